"""ActivityNet-style detection results files.

Format (what ``tad eval``/``tad detect`` write and ``tad score`` reads)::

    {"version": "VERSION 1.3",
     "results": {video_id: [{"label": class_name, "score": float, "segment": [t0, t1]}, ...]},
     "external_data": {...}}

Times are seconds. Floats are written with Python's shortest round-trip repr, so writing
then reading gives back exactly the same numbers.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tad.errors import TadInputError

__all__ = ["RESULTS_VERSION", "write_predictions", "load_predictions"]

RESULTS_VERSION = "VERSION 1.3"


def _as_float(value: Any) -> float:
    if hasattr(value, "item"):  # numpy scalar, 0-d tensor
        value = value.item()
    return float(value)


def write_predictions(path: str | Path, results: Mapping[str, Sequence[Mapping[str, Any]]],
                      external_data: Mapping[str, Any] | None = None) -> Path:
    """Write ``results[video_id] = [{"label", "score", "segment"}, ...]`` atomically
    (a temporary file renamed into place), creating parent folders."""
    path = Path(path)
    out: dict[str, list[dict[str, Any]]] = {}
    for vid, dets in results.items():
        out[str(vid)] = [{"label": str(d["label"]), "score": _as_float(d["score"]),
                          "segment": [_as_float(d["segment"][0]), _as_float(d["segment"][1])]}
                         for d in dets]
    doc = {"version": RESULTS_VERSION, "results": out,
           "external_data": dict(external_data) if external_data is not None else {"used": False, "details": ""}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_predictions(path: str | Path, classes: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """Read and validate a results JSON. With ``classes``, labels must be one of them
    (an integer label is taken as a class id). Raises :class:`TadInputError` naming the
    file and the first bad entry."""
    path = Path(path)
    if not path.is_file():
        raise TadInputError(path, "file not found" if not path.exists() else "not a file")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise TadInputError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise TadInputError(path, "not valid JSON (not UTF-8 text)") from None
    if not isinstance(data, dict) or "results" not in data:
        raise TadInputError(path, "missing key 'results' (expected ActivityNet results: "
                                  "{\"results\": {video_id: [{\"label\", \"score\", \"segment\"}]}})")
    results = data["results"]
    if not isinstance(results, dict):
        raise TadInputError(path, "'results' must map video ids to lists of detections")
    known = set(classes) if classes is not None else None
    out: dict[str, list[dict]] = {}
    for vid, dets in results.items():
        if not isinstance(dets, list):
            raise TadInputError(path, f"results[{vid!r}]: must be a list of detections")
        parsed = []
        for j, det in enumerate(dets):
            where = f"results[{vid!r}][{j}]"
            if not isinstance(det, dict):
                raise TadInputError(path, f"{where}: must be an object")
            for key in ("label", "score", "segment"):
                if key not in det:
                    raise TadInputError(path, f"{where}: missing key {key!r}")
            label, score, seg = det["label"], det["score"], det["segment"]
            if classes is not None and isinstance(label, int) and not isinstance(label, bool) \
                    and 0 <= label < len(classes):
                label = classes[label]
            if not isinstance(label, str):
                raise TadInputError(path, f"{where}: 'label' must be a class name, got {label!r}")
            if known is not None and label not in known:
                raise TadInputError(path, f"{where}: unknown label {label!r} (not a class of the annotations)")
            if not _number(score) or not math.isfinite(score):
                raise TadInputError(path, f"{where}: 'score' must be a finite number, got {score!r}")
            if not isinstance(seg, (list, tuple)) or len(seg) != 2 or not all(_number(x) for x in seg):
                raise TadInputError(path, f"{where}: 'segment' must be [start, end] numbers, got {seg!r}")
            if not all(math.isfinite(x) for x in seg):
                raise TadInputError(path, f"{where}: 'segment' must be finite, got {seg!r}")
            if seg[1] < seg[0]:
                raise TadInputError(path, f"{where}: segment end {seg[1]} < start {seg[0]}")
            parsed.append({"label": label, "score": float(score), "segment": [float(seg[0]), float(seg[1])]})
        out[str(vid)] = parsed
    return out
