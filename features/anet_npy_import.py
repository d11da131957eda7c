"""Import format ``anet_npy``: one ``v_<youtube id>.npy`` (T, C) array per video, as ActionFormer
publishes its ActivityNet TSP features (a 16-frame clip every 16 frames at 15 fps by default).
Registered in :mod:`tad.features.import_formats`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tad.errors import TadInputError
from tad.features.import_formats import ImportFormat, register_format

__all__ = ["list_anet_npy_videos"]


def _npy_files(paths: Sequence[Path]) -> list[Path]:
    return sorted(f for p in paths if p.is_dir() for f in p.glob("*.npy") if not f.name.startswith("."))


def _is_anet_npy(paths: Sequence[Path], annotation_ids: set[str] | None = None) -> bool:
    """Folders of .npy files, every one named v_<id>, whose ids are annotated only without the
    prefix (so UCF101-style ``v_Jump_g01`` THUMOS files are not taken for ActivityNet ones)."""
    files = _npy_files(paths)
    if not files or annotation_ids is None or not all(f.stem.startswith("v_") for f in files):
        return False
    stripped = sum(f.stem[2:] in annotation_ids for f in files)
    raw = sum(f.stem in annotation_ids for f in files)
    return stripped > len(files) / 2 and raw == 0


def list_anet_npy_videos(paths: Sequence[Path]) -> list[tuple[str, Callable[[], np.ndarray]]]:
    for p in paths:
        if not p.is_dir():
            raise TadInputError(p, "anet_npy takes folders of v_<id>.npy files")
    files = _npy_files(paths)

    def loader(path: Path) -> Callable[[], np.ndarray]:
        return lambda: np.load(path, allow_pickle=False)

    return [(f.stem, loader(f)) for f in files]


register_format(ImportFormat(
    name="anet_npy",
    description="one v_<id>.npy (T, C) per video, ActionFormer's ActivityNet release (16-frame clips every 16 at 15 fps)",
    detect=_is_anet_npy,
    list_videos=list_anet_npy_videos,
    defaults=dict(fps=15.0, clip_len=16, clip_stride=16, frame_interval=1, backbone="anet_npy"),
))
