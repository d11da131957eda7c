"""End to end: `tad extract` on the real clips with the full-size backbones (random init)."""
from __future__ import annotations

import pytest

from tad.features.extract import ExtractOptions, extract_folder
from tad.features.store import FeatureStore
from extract_checks import check_store_item


@pytest.mark.slow
@pytest.mark.parametrize("backbone, dim, clip_len, interval", [("tada2d_r50", 2048, 8, 8),
                                                               ("slowfast_r50_8x8", 2304, 32, 2)])
def test_extract_real_videos_right_T_and_C(tmp_path, real_videos_dir, backbone, dim, clip_len, interval):
    stride = 48  # few clips: this checks shapes and timing, not throughput
    opts = ExtractOptions(backbone=backbone, random_init=True, short_side=64, crop=64, clip_stride=stride,
                          workers=1, batch_size=8)
    summary = extract_folder(real_videos_dir, tmp_path / "f.h5", opts, progress=False)
    assert not summary.failed and sorted(summary.done) == ["highjump", "tennis26"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == dim and store.attrs["backbone"] == backbone
    for vid in store.videos:
        check_store_item(store[vid], dim, clip_len, interval, stride)
