"""Import format ``tsp_h5``: TSP's released ActivityNet features, one ``.h5`` file holding one
(T, 512) dataset per video named ``v_<youtube id>`` (R(2+1)D-34 fine-tuned by TSP, a
16-frame clip every 16 frames at 15 fps). Registered in :mod:`tad.features.import_formats`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np

from tad.errors import TadInputError
from tad.features.import_formats import ImportFormat, register_format

__all__ = ["list_tsp_h5_videos"]


def _is_tsp_h5(paths: Sequence[Path], annotation_ids: set[str] | None = None) -> bool:
    """One HDF5 file (not a tad store) whose top level holds 2-D datasets."""
    if len(paths) != 1 or not paths[0].is_file() or paths[0].suffix.lower() not in (".h5", ".hdf5"):
        return False
    with h5py.File(paths[0], "r") as h5:
        if "format" in h5.attrs or "videos" in h5:
            return False  # a tad feature store
        for name in h5:
            item = h5[name]
            return isinstance(item, h5py.Dataset) and item.ndim == 2
    return False


def list_tsp_h5_videos(paths: Sequence[Path]) -> list[tuple[str, Callable[[], np.ndarray]]]:
    """(dataset name, loader) for every 2-D dataset of the file."""
    if len(paths) != 1 or not paths[0].is_file():
        raise TadInputError(paths[0] if paths else "-", "tsp_h5 takes one .h5 file")
    path = paths[0]
    try:
        with h5py.File(path, "r") as h5:
            names = sorted(n for n in h5 if isinstance(h5[n], h5py.Dataset) and h5[n].ndim == 2)
    except OSError as exc:
        raise TadInputError(path, f"not a readable HDF5 file ({str(exc).splitlines()[0]})") from None

    def loader(name: str) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            with h5py.File(path, "r") as h5:
                return np.asarray(h5[name][()])
        return load

    return [(name, loader(name)) for name in names]


register_format(ImportFormat(
    name="tsp_h5",
    description="TSP's single .h5 file, one (T, 512) dataset per v_<id> (16-frame clips every 16 frames at 15 fps)",
    detect=_is_tsp_h5,
    list_videos=list_tsp_h5_videos,
    defaults=dict(fps=15.0, clip_len=16, clip_stride=16, frame_interval=1, backbone="tsp_r2plus1d_34"),
))
