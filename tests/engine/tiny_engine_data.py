"""A tiny, easy feature set (3 classes, 16-d) and its annotations, for the engine tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tad.features.store_writer import FeatureStoreWriter

CLASSES = ("jump", "throw", "run")


def make_tiny_dataset(root: Path, num_videos: int = 8, num_steps: int = 48, dim: int = 16, seed: int = 0):
    """Videos of ``num_steps`` features (clip i at (4 i + 8)/30 s); each action adds its class
    prototype to the features it covers. Half the videos are 'Validation', half 'Test'."""
    rng = np.random.RandomState(seed)
    prototypes = rng.randn(len(CLASSES), dim) * 3
    root.mkdir(parents=True, exist_ok=True)
    ann_path, store_path = root / "annotations.json", root / "features.h5"
    writer = FeatureStoreWriter(store_path, meta=dict(backbone="synthetic", checkpoint_name="none",
                                                      checkpoint_sha256="", options={}), dtype="float32")
    database = {}
    for v in range(num_videos):
        vid = f"video_{v:02d}"
        ts = (np.arange(num_steps) * 4 + 8) / 30.0
        feats = rng.randn(num_steps, dim) * 0.3
        annotations = []
        start = int(rng.randint(2, 8))
        while start < num_steps - 8:
            length = int(rng.randint(4, 10))
            label = int(rng.randint(len(CLASSES)))
            feats[start:start + length] += prototypes[label]
            t0, t1 = float(ts[start]), float(ts[start + length - 1])
            annotations.append({"label": CLASSES[label], "segment": [t0, t1],
                                "segment(frames)": [t0 * 30, t1 * 30], "label_id": label})
            start += length + int(rng.randint(4, 10))
        duration = float(ts[-1] + 8 / 30)
        database[vid] = {"subset": "Validation" if v % 2 == 0 else "Test", "duration": duration, "fps": 30.0,
                         "annotations": annotations}
        writer.write_video(vid, feats.astype(np.float32), ts, dict(
            fps=30.0, num_frames=num_steps * 4 + 12, duration=duration, source_path=f"{vid}.mp4",
            source_size=0, source_mtime=0.0, padded=False))
    writer.finalize()
    ann_path.write_text(json.dumps({"version": "tiny", "database": database}))
    return ann_path, store_path
