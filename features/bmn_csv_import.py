"""Import format ``bmn_csv``: one ``v_<youtube id>.csv`` of TSN features per video, as BMN/BSN
publish them for ActivityNet (``csv_mean_100``: a header row, then T = 100 rows of 400 values,
200 RGB + 200 flow, rescaled to 100 steps per video). The rows are spread evenly over the
annotated duration (``--fps-from``), unless ``--fps`` gives regular clips.
Registered in :mod:`tad.features.import_formats`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tad.errors import TadInputError
from tad.features.import_formats import ImportFormat, register_format

__all__ = ["list_bmn_csv_videos", "read_feature_csv"]


def _csv_files(paths: Sequence[Path]) -> list[Path]:
    return sorted(f for p in paths if p.is_dir() for f in p.glob("*.csv") if not f.name.startswith("."))


def _is_bmn_csv(paths: Sequence[Path], annotation_ids: set[str] | None = None) -> bool:
    """Folders holding .csv files and no .npy/.npz/.pt arrays."""
    arrays = any(f for p in paths if p.is_dir() for ext in ("npy", "npz", "pt") for f in p.glob(f"*.{ext}"))
    return not arrays and bool(_csv_files(paths))


def read_feature_csv(path: Path) -> np.ndarray:
    """(T, C) float32 from a CSV of numbers, with or without a header row."""
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    try:
        [float(x) for x in first.strip().split(",") if x.strip()]
        skip = 0
    except ValueError:
        skip = 1  # a header (column names)
    try:
        array = np.loadtxt(path, delimiter=",", skiprows=skip, dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise TadInputError(path, f"not a CSV of numbers ({str(exc).splitlines()[0]})") from None
    return array


def list_bmn_csv_videos(paths: Sequence[Path]) -> list[tuple[str, Callable[[], np.ndarray]]]:
    for p in paths:
        if not p.is_dir():
            raise TadInputError(p, "bmn_csv takes folders of v_<id>.csv files")
    files = _csv_files(paths)
    return [(f.stem, (lambda f=f: read_feature_csv(f))) for f in files]


register_format(ImportFormat(
    name="bmn_csv",
    description="one v_<id>.csv of TSN features per video (BMN/BSN csv_mean_100), spread over the annotated duration",
    detect=_is_bmn_csv,
    list_videos=list_bmn_csv_videos,
    # rows spread over the annotated duration; with --fps: 16-frame snippets every 16 frames
    defaults=dict(evenly_spread=True, clip_len=16, clip_stride=16, frame_interval=1, backbone="tsn_bmn"),
))
