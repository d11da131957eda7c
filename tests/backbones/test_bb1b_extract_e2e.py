"""End to end: `tad extract` on highjump.mp4 with the X3D, TSM, C3D and 3D ResNet backbones (random init)."""
from __future__ import annotations

import pytest

from extract_checks import extract_highjump_and_check

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
    extract_highjump_and_check(tmp_path, real_videos_dir, backbone, dim, clip_len, interval, crop, stride, **kwargs)
