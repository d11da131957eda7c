"""Shared check of the backbone extraction tests: `tad extract`'s library call on real clips with a
registered backbone (random init) gives the right T, C and clip timestamps."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tad.features.extract import ExtractOptions, extract_videos
from tad.features.store import FeatureStore

FPS = 30.0  # the backbones' presets resample to 30 fps


def check_store_item(item, dim: int, clip_len: int, interval: int, stride: int) -> None:
    """One video of a store: (T, dim) finite, non-zero features; T and timestamps follow the clip sampling."""
    span = (clip_len - 1) * interval + 1
    frames = int(round(item.attrs["duration"] * FPS))
    assert item.features.shape[1] == dim and abs(item.features.shape[0] - ((frames - span) // stride + 1)) <= 1
    assert np.isfinite(item.features.astype(np.float32)).all() and np.abs(item.features).max() > 0
    np.testing.assert_allclose(np.diff(item.timestamps), stride / FPS, atol=2e-3)
    np.testing.assert_allclose(item.timestamps[0], span / FPS / 2, atol=2e-3)


def extract_highjump_and_check(tmp_path: Path, videos_dir: Path, backbone: str, dim: int, clip_len: int,
                               interval: int, crop: int, stride: int, min_clips: int = 1, **kwargs) -> None:
    """Extract highjump.mp4 at a small crop and check the store (backbone, options, T, C, timestamps)."""
    opts = ExtractOptions(backbone=backbone, random_init=True, backbone_kwargs=kwargs, short_side=crop, crop=crop,
                          clip_stride=stride, workers=0, batch_size=4)
    summary = extract_videos([videos_dir / "highjump.mp4"], videos_dir, tmp_path / "f.h5", opts, progress=False)
    assert not summary.failed and summary.done == ["highjump"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == dim and store.attrs["backbone"] == backbone
    assert store.attrs["options"]["clip_len"] == clip_len and store.attrs["options"]["frame_interval"] == interval
    item = store["highjump"]
    assert item.features.shape[0] >= min_clips
    check_store_item(item, dim, clip_len, interval, stride)
