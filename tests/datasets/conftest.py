"""Tiny feature stores and annotation files for the dataset tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tad.features.store_writer import FeatureStoreWriter


def write_annotations(path: Path, videos: dict, classes=("a", "b", "c")) -> Path:
    """videos[vid] = (subset, duration, [(t0, t1, class_name), ...]) -> ActionFormer JSON."""
    database = {}
    for vid, (subset, duration, segments) in videos.items():
        database[vid] = dict(subset=subset, duration=duration, fps=30.0, annotations=[
            dict(label=name, segment=[t0, t1], **{"segment(frames)": [t0 * 30, t1 * 30]},
                 label_id=classes.index(name)) for t0, t1, name in segments])
    path.write_text(json.dumps(dict(version="test", database=database)))
    return path


def write_store(path: Path, videos: dict) -> Path:
    """videos[vid] = (features (T, C[, g, g]), timestamps (T,)) -> finalized store."""
    writer = FeatureStoreWriter(path, meta=dict(backbone="test", checkpoint_name="none", checkpoint_sha256="",
                                                options={}), dtype="float32")
    for vid, (feats, ts) in videos.items():
        writer.write_video(vid, np.asarray(feats, dtype=np.float32), np.asarray(ts, dtype=np.float64),
                           dict(fps=30.0, num_frames=int(len(ts) * 4), duration=float(ts[-1] + 0.5),
                                source_path=f"{vid}.mp4", source_size=0, source_mtime=0.0, padded=False))
    return writer.finalize()


@pytest.fixture
def make_data(tmp_path):
    def make(ann_videos: dict, store_videos: dict, classes=("a", "b", "c")):
        return (write_annotations(tmp_path / "ann.json", ann_videos, classes),
                write_store(tmp_path / "features.h5", store_videos))
    return make
