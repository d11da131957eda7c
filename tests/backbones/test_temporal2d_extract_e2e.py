"""End to end: `tad extract` on highjump.mp4 with GSF-R50, TEA-R50 and RSANet-R50 (random init, small crop)."""
from __future__ import annotations

import pytest

from extract_checks import extract_highjump_and_check

CASES = [  # backbone, official clip_len, frame_interval
    ("gsf_r50", 16, 4),
    ("tea_r50", 8, 8),
    ("rsa_r50", 16, 4),
]


@pytest.mark.slow
@pytest.mark.parametrize("backbone, clip_len, interval", CASES)
def test_extract_highjump_right_T_C_and_times(tmp_path, real_videos_dir, backbone, clip_len, interval):
    stride = 150  # a few clips: shapes and timing, not throughput
    extract_highjump_and_check(tmp_path, real_videos_dir, backbone, 2048, clip_len, interval, 48, stride, min_clips=2)
