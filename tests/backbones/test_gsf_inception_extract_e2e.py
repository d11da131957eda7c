"""End to end: `tad extract` on highjump.mp4 with GSF-BNInception and GSF-InceptionV3 (random init, small crop)."""
from __future__ import annotations

import pytest

from extract_checks import extract_highjump_and_check

CASES = [  # backbone, feature dim, crop (about the smallest each network's grid reductions take)
    ("gsf_bninception", 1024, 64),
    ("gsf_inceptionv3", 2048, 75),
]


@pytest.mark.slow
@pytest.mark.parametrize("backbone, dim, crop", CASES)
def test_extract_highjump_right_T_C_and_times(tmp_path, real_videos_dir, backbone, dim, crop):
    stride, clip_len, interval = 150, 16, 4  # a few clips: shapes and timing, not throughput
    extract_highjump_and_check(tmp_path, real_videos_dir, backbone, dim, clip_len, interval, crop, stride, min_clips=2)
