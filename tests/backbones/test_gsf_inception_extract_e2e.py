"""End to end: `tad extract` on highjump.mp4 with GSF-BNInception and GSF-InceptionV3 (random init, small crop)."""
from __future__ import annotations

import numpy as np
import pytest

from tad.features.extract import ExtractOptions, extract_videos
from tad.features.store import FeatureStore

CASES = [  # backbone, feature dim, crop (about the smallest each network's grid reductions take)
    ("gsf_bninception", 1024, 64),
    ("gsf_inceptionv3", 2048, 75),
]


@pytest.mark.slow
@pytest.mark.parametrize("backbone, dim, crop", CASES)
def test_extract_highjump_right_T_C_and_times(tmp_path, real_videos_dir, backbone, dim, crop):
    stride, clip_len, interval = 150, 16, 4  # a few clips: shapes and timing, not throughput
    opts = ExtractOptions(backbone=backbone, random_init=True, short_side=crop, crop=crop, clip_stride=stride,
                          workers=0, batch_size=4)
    video = real_videos_dir / "highjump.mp4"
    summary = extract_videos([video], real_videos_dir, tmp_path / "f.h5", opts, progress=False)
    assert not summary.failed and summary.done == ["highjump"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == dim and store.attrs["backbone"] == backbone
    assert store.attrs["options"]["clip_len"] == clip_len and store.attrs["options"]["frame_interval"] == interval
    item = store["highjump"]
    span = (clip_len - 1) * interval + 1
    frames = int(round(item.attrs["duration"] * 30.0))  # resampled to the backbone's 30 fps
    assert item.features.shape[1] == dim and abs(item.features.shape[0] - ((frames - span) // stride + 1)) <= 1
    assert item.features.shape[0] >= 2
    assert np.isfinite(item.features.astype(np.float32)).all() and np.abs(item.features).max() > 0
    np.testing.assert_allclose(np.diff(item.timestamps), stride / 30.0, atol=2e-3)
    np.testing.assert_allclose(item.timestamps[0], span / 30.0 / 2, atol=2e-3)
