"""Ground-truth annotations of untrimmed videos (ActionFormer or ActivityNet JSON).

Both formats share ``{"database": {video_id: {"subset", "duration", "annotations": [
{"label", "segment": [t0, t1], ...}]}}}``. ActionFormer files (THUMOS14, EPIC) also carry
``fps`` and an integer ``label_id`` per annotation; ActivityNet files carry a ``taxonomy``.

Class ids: when every annotation has a ``label_id``, classes are ordered by it (ids that
skip numbers are compacted in order); otherwise classes are the sorted label names.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from tad.errors import TadInputError

__all__ = ["AnnotationSet", "VideoAnnotation", "load_annotations", "remove_duplicate_segments"]

#: GT shorter than this (seconds) is dropped, and two GT of one class whose start and
#: end both agree within it are one instance: the ActivityNet/ActionFormer convention.
DUPLICATE_TOLERANCE = 1e-3


@dataclass
class VideoAnnotation:
    video_id: str
    subset: str
    duration: float
    fps: float | None
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float64))  # (N, 2) seconds
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # (N,) class ids

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class AnnotationSet:
    classes: list[str]
    videos: dict[str, VideoAnnotation]
    path: str = ""
    version: str = ""

    @property
    def class_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def subsets(self) -> list[str]:
        """Subset names as written in the file, in order of first appearance."""
        return list(dict.fromkeys(v.subset for v in self.videos.values()))

    def subset(self, name: str | None) -> dict[str, VideoAnnotation]:
        """Videos of one subset, matched case-insensitively (``None`` or ``'all'``: every video)."""
        if name is None or name.lower() == "all":
            return dict(self.videos)
        wanted = name.lower()
        return {vid: v for vid, v in self.videos.items() if v.subset.lower() == wanted}

    def has_subset(self, name: str | None) -> bool:
        return name is None or name.lower() == "all" or any(s.lower() == name.lower() for s in self.subsets)


def remove_duplicate_segments(segments: np.ndarray, labels: np.ndarray,
                              tol: float = DUPLICATE_TOLERANCE) -> np.ndarray:
    """Indices of the GT kept by the reference evaluators: drop GT shorter than ``tol``
    and every GT whose class matches and whose start and end lie within ``tol`` of an
    earlier kept GT (file order)."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels)
    n = len(labels)
    keep = (segments[:, 1] - segments[:, 0]) >= tol
    if n < 2:
        return np.nonzero(keep)[0]
    close = ((np.abs(segments[:, None, 0] - segments[None, :, 0]) <= tol)
             & (np.abs(segments[:, None, 1] - segments[None, :, 1]) <= tol)
             & (labels[:, None] == labels[None, :]))
    close &= np.tri(n, k=-1, dtype=bool)  # close[i, j]: j is an earlier GT close to i
    for i in np.nonzero(close.any(axis=1) & keep)[0]:  # rare: decide in file order
        keep[i] = not (close[i, :i] & keep[:i]).any()
    return np.nonzero(keep)[0]


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise TadInputError(path, "file not found" if not path.exists() else "not a file")
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise TadInputError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise TadInputError(path, "not valid JSON (not UTF-8 text)") from None


def _class_order(path: Path, entries: Iterable[tuple[str, dict]]) -> list[str]:
    """Class names indexed by class id (see module docstring)."""
    names: set[str] = set()
    id_of: dict[str, int] = {}
    name_of: dict[int, str] = {}
    all_have_ids = True
    for where, ann in entries:
        name = ann["label"]
        names.add(name)
        if "label_id" not in ann:
            all_have_ids = False
            continue
        lid = ann["label_id"]
        if isinstance(lid, float) and lid.is_integer():
            lid = int(lid)
        if not isinstance(lid, int) or isinstance(lid, bool):
            raise TadInputError(path, f"{where}: label_id {lid!r} is not an integer")
        if id_of.setdefault(name, lid) != lid:
            raise TadInputError(path, f"{where}: label {name!r} has label_id {lid} here but {id_of[name]} earlier")
        if name_of.setdefault(lid, name) != name:
            raise TadInputError(path, f"{where}: label_id {lid} names {name!r} here but {name_of[lid]!r} earlier")
    if all_have_ids and id_of:
        return [name_of[i] for i in sorted(name_of)]
    return sorted(names)


def load_annotations(path: str | Path) -> AnnotationSet:
    """Read an ActionFormer or ActivityNet annotation JSON. Bad input raises
    :class:`TadInputError` naming the file and the offending entry."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or "database" not in data:
        raise TadInputError(path, "missing key 'database' (expected ActionFormer/ActivityNet annotations: "
                                  "{\"database\": {video_id: {\"subset\", \"duration\", \"annotations\"}}})")
    database = data["database"]
    if not isinstance(database, dict):
        raise TadInputError(path, "'database' must map video ids to entries")

    parsed: list[tuple[str, str, float, float | None, list[tuple[str, dict]]]] = []
    flat: list[tuple[str, dict]] = []
    for vid, entry in database.items():
        where = f"database[{vid!r}]"
        if not isinstance(entry, dict):
            raise TadInputError(path, f"{where}: must be an object")
        for key in ("subset", "duration"):
            if key not in entry:
                raise TadInputError(path, f"{where}: missing key {key!r}")
        subset = entry["subset"]
        if not isinstance(subset, str):
            raise TadInputError(path, f"{where}: 'subset' must be a string")
        duration = entry["duration"]
        if isinstance(duration, str):
            try:
                duration = float(duration)
            except ValueError:
                pass
        if not _finite_number(duration) or duration < 0:
            raise TadInputError(path, f"{where}: 'duration' must be a finite number >= 0, got {entry['duration']!r}")
        fps = entry.get("fps")
        if fps is not None and (not _finite_number(fps) or fps <= 0):
            raise TadInputError(path, f"{where}: 'fps' must be a positive number, got {fps!r}")
        anns = entry.get("annotations", [])
        if anns is None:
            anns = []
        if not isinstance(anns, list):
            raise TadInputError(path, f"{where}: 'annotations' must be a list")
        items = []
        for j, ann in enumerate(anns):
            awhere = f"{where}['annotations'][{j}]"
            if not isinstance(ann, dict):
                raise TadInputError(path, f"{awhere}: must be an object")
            for key in ("label", "segment"):
                if key not in ann:
                    raise TadInputError(path, f"{awhere}: missing key {key!r}")
            if not isinstance(ann["label"], str):
                raise TadInputError(path, f"{awhere}: 'label' must be a string, got {ann['label']!r}")
            seg = ann["segment"]
            if (not isinstance(seg, (list, tuple)) or len(seg) != 2
                    or not all(_finite_number(x) for x in seg)):
                raise TadInputError(path, f"{awhere}: 'segment' must be [start, end] finite numbers, got {seg!r}")
            if seg[1] < seg[0]:
                raise TadInputError(path, f"{awhere}: segment end {seg[1]} < start {seg[0]}")
            items.append((awhere, ann))
        flat.extend(items)
        parsed.append((str(vid), subset, float(duration), None if fps is None else float(fps), items))

    classes = _class_order(path, flat)
    index = {name: i for i, name in enumerate(classes)}
    videos: dict[str, VideoAnnotation] = {}
    for vid, subset, duration, fps, items in parsed:
        segments = np.array([[float(a["segment"][0]), float(a["segment"][1])] for _, a in items],
                            dtype=np.float64).reshape(-1, 2)
        labels = np.array([index[a["label"]] for _, a in items], dtype=np.int64)
        videos[vid] = VideoAnnotation(vid, subset, duration, fps, segments, labels)
    return AnnotationSet(classes=classes, videos=videos, path=str(path), version=str(data.get("version", "")))
