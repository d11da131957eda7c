"""End to end: `tad extract` on highjump.mp4 with the X3D, TSM, C3D and 3D ResNet backbones (random init)."""
from __future__ import annotations

import numpy as np
import pytest

from tad.features.extract import ExtractOptions, extract_videos
from tad.features.store import FeatureStore

CASES = [  # backbone, constructor options, crop, feature dim, official clip_len, frame_interval
    ("x3d_xs", {}, 64, 2048, 4, 12),
    ("x3d_m", {"feature": "conv5"}, 64, 432, 16, 5),
    ("tsm_r50", {"online": True}, 64, 2048, 8, 8),
    ("tsm_mobilenetv2_online", {}, 64, 1280, 8, 2),
    ("c3d_sports1m", {"bgr_mean": (90.0, 100.0, 110.0)}, 112, 4096, 16, 1),
    ("resnet3d50", {}, 64, 2048, 16, 1),
]


@pytest.mark.slow
@pytest.mark.parametrize("backbone, kwargs, crop, dim, clip_len, interval", CASES)
def test_extract_highjump_right_T_C_and_times(tmp_path, real_videos_dir, backbone, kwargs, crop, dim, clip_len,
                                               interval):
    stride = 330 if dim == 4096 else 120  # a few clips (C3D: 3, 77 GFLOPs each): shapes and timing, not throughput
    opts = ExtractOptions(backbone=backbone, random_init=True, backbone_kwargs=kwargs, short_side=crop, crop=crop,
                          clip_stride=stride, workers=0, batch_size=4)
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
    assert np.isfinite(item.features.astype(np.float32)).all() and np.abs(item.features).max() > 0
    np.testing.assert_allclose(np.diff(item.timestamps), stride / 30.0, atol=2e-3)
    np.testing.assert_allclose(item.timestamps[0], span / 30.0 / 2, atol=2e-3)
