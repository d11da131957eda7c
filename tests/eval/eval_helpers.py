"""Shared helpers of tests/eval: tiny annotation files and the loop reference."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_reference():
    """bench/map_reference.py: the plain loop implementation of the protocol."""
    spec = importlib.util.spec_from_file_location("tad_map_reference", REPO / "bench" / "map_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def actionformer_db(videos: dict, classes=("A", "B", "C")) -> dict:
    """videos[vid] = (subset, duration, [(label, t0, t1), ...]) -> ActionFormer-style JSON."""
    ids = {c: i for i, c in enumerate(classes)}
    return {"version": "test", "database": {
        vid: {"subset": subset, "duration": duration, "fps": 30.0,
              "annotations": [{"label": lab, "segment": [t0, t1], "segment(frames)": [t0 * 30, t1 * 30],
                               "label_id": ids[lab]} for lab, t0, t1 in anns]}
        for vid, (subset, duration, anns) in videos.items()}}
