"""extract_folder on real and generated footage: clip arithmetic, timestamps, failures, resume."""
from __future__ import annotations

import os
import shutil
import time

import decord
import numpy as np
import pytest

from extract_video_utils import make_video
from tad.errors import TadInputError
from tad.features.extract import ExtractOptions, extract_folder, extract_videos
from tad.features.store import FeatureStore

SMALL = dict(backbone="tiny3d", random_init=True, short_side=32, crop=32, batch_size=4, workers=2)


def opts(**kw) -> ExtractOptions:
    return ExtractOptions(**{**SMALL, **kw})


def test_real_footage_clip_arithmetic_and_frame_times(real_videos_dir, tmp_path):
    out = tmp_path / "real.h5"
    summary = extract_folder(real_videos_dir, out, opts(fps="native"), progress=False)
    assert sorted(summary.done) == ["highjump", "tennis26"] and not summary.failed
    store = FeatureStore(out)
    assert store.attrs["backbone"] == "tiny3d"
    options = store.attrs["options"]
    assert (options["clip_len"], options["frame_interval"], options["clip_stride"], options["fps"]) == (8, 1, 4, "native")
    assert options["short_side"] == 32 and options["crop"] == 32 and options["mean"] == [0.45, 0.45, 0.45]
    for vid in ("highjump", "tennis26"):
        reader = decord.VideoReader(str(real_videos_dir / f"{vid}.mp4"))
        n = len(reader)
        own = reader.get_frame_timestamp(np.arange(n)).astype(np.float64)  # (N, 2)
        item = store[vid]
        T = (n - 8) // 4 + 1
        assert item.features.shape == (T, 64) and item.features.dtype == np.float16
        starts = np.arange(T) * 4
        ends = starts + 7
        expected = (own[starts, 0] + own[ends, 0] + (own[ends + 1, 0] - own[ends, 0])) / 2
        np.testing.assert_allclose(item.timestamps, expected, atol=1e-9)
        assert item.attrs["num_frames"] == n and item.attrs["padded"] is False or item.attrs["padded"] == 0
        assert item.attrs["duration"] == pytest.approx(own[-1, 1], abs=1e-4)
        assert item.attrs["fps"] == pytest.approx(reader.get_avg_fps())
        assert item.attrs["source_size"] == (real_videos_dir / f"{vid}.mp4").stat().st_size
        assert np.isfinite(item.features).all() and item.features.std() > 0


def test_fps_30_timestamps_follow_the_thumos_convention(real_videos_dir, tmp_path):
    out = tmp_path / "t30.h5"
    extract_videos([real_videos_dir / "tennis26.mp4"], real_videos_dir, out, opts(fps=30, clip_len=16), progress=False)
    item = FeatureStore(out)["tennis26"]
    T = len(item.timestamps)
    assert T == (339 - 16) // 4 + 1
    np.testing.assert_allclose(item.timestamps, (4 * np.arange(T) + 8) / 30.0, atol=1e-3)


def test_vfr_video_gets_timestamp_correct_clips(tmp_path):
    videos = tmp_path / "v"
    videos.mkdir()
    pts_ms = [int(round(i * 1000 / 30)) for i in range(30)] + [1000 + 100 * i for i in range(1, 11)]  # 30 fps, then 10 fps
    make_video(videos / "vfr.mp4", pts_ms=pts_ms)
    out = tmp_path / "vfr.h5"
    extract_folder(videos, out, opts(fps=30, clip_len=8, clip_stride=4), progress=False)
    item = FeatureStore(out)["vfr"]
    own = decord.VideoReader(str(videos / "vfr.mp4")).get_frame_timestamp(np.arange(40)).astype(np.float64)
    last_duration = own[-1, 1] - own[-1, 0]  # the container's packet duration for the last frame
    end = 2.0 + last_duration
    frames = int(np.floor((end - 1e-3) * 30)) + 1  # output frames at k / 30
    T = (frames - 8) // 4 + 1
    assert len(item.timestamps) == T
    np.testing.assert_allclose(item.timestamps, (4 * np.arange(T) + 4) / 30.0, atol=2e-3)
    native = tmp_path / "native.h5"
    extract_folder(videos, native, opts(fps="native", clip_len=8, clip_stride=4), progress=False)
    item = FeatureStore(native)["vfr"]
    pts = np.array(pts_ms) / 1000.0
    durations = np.r_[np.diff(pts), last_duration]  # gaps to the next frame, not 1 / average fps
    starts = np.arange((40 - 8) // 4 + 1) * 4
    expected = (pts[starts] + pts[starts + 7] + durations[starts + 7]) / 2
    np.testing.assert_allclose(item.timestamps, expected, atol=2e-3)
    assert item.timestamps[-1] > 1.5  # seconds, not frame index / average fps


def _bad_folder(root, real_videos_dir):
    root.mkdir()
    make_video(root / "good.mp4", num_frames=24)
    data = (real_videos_dir / "tennis26.mp4").read_bytes()
    (root / "corrupt.mp4").write_bytes(data[:4096] + bytes(range(256)) * 64)
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("not a video at all\n" * 100)
    unreadable = root / "locked.mp4"
    shutil.copy(root / "good.mp4", unreadable)
    os.chmod(unreadable, 0)
    return root


def test_bad_videos_fail_one_line_each_and_the_rest_finishes(real_videos_dir, tmp_path, capsys):
    root = _bad_folder(tmp_path / "bad", real_videos_dir)
    out = tmp_path / "bad.h5"
    summary = extract_folder(root, out, opts(), progress=False)
    root_user = os.geteuid() == 0  # root reads chmod-000 files: the 'locked' assertions need a normal user
    assert sorted(summary.done) == (["good", "locked"] if root_user else ["good"])
    failed = {os.path.basename(p): reason for p, reason in summary.failed.items()}
    assert {"corrupt.mp4", "zero.mp4", "text.mp4"} <= set(failed)
    assert "empty" in failed["zero.mp4"]
    assert "decode" in failed["text.mp4"]
    if not root_user:
        assert "permission" in failed["locked.mp4"]
    lines = capsys.readouterr().err.strip().splitlines()
    for name in failed:
        assert sum(name in line for line in lines) == 1
        assert all("\n" not in r for r in failed.values())
    store = FeatureStore(out)
    assert sorted(store.videos) == sorted(summary.done)
    assert {"corrupt.mp4", "zero.mp4", "text.mp4"} <= set(store.failed)


def _hanging_open_video(real_open):
    def open_video(path, *args, **kwargs):
        if "hang" in os.fspath(path):
            time.sleep(3600)
        return real_open(path, *args, **kwargs)
    return open_video


def test_hung_decoder_is_killed_after_timeout(tmp_path, monkeypatch):
    import tad.features.decode_tasks as decode_mod  # where each worker opens its video

    monkeypatch.setattr(decode_mod, "open_video", _hanging_open_video(decode_mod.open_video))
    root = tmp_path / "h"
    root.mkdir()
    make_video(root / "a.mp4", num_frames=20)
    make_video(root / "hang.mp4", num_frames=20)
    make_video(root / "z.mp4", num_frames=20)
    started = time.time()
    summary = extract_folder(root, tmp_path / "h.h5", opts(video_timeout=2.0), progress=False)
    assert time.time() - started < 60
    assert sorted(summary.done) == ["a", "z"]
    (path, reason), = summary.failed.items()
    assert path.endswith("hang.mp4") and "timed out" in reason


def test_tiny_video_is_padded(tmp_path):
    root = tmp_path / "tiny"
    root.mkdir()
    make_video(root / "tiny.mp4", num_frames=3)
    out = tmp_path / "tiny.h5"
    extract_folder(root, out, opts(clip_len=8), progress=False)
    item = FeatureStore(out)["tiny"]
    assert item.features.shape == (1, 64)
    assert bool(item.attrs["padded"]) is True
    assert item.timestamps[0] == pytest.approx((0 + 2 / 30 + 1 / 30) / 2, abs=2e-3)


def test_spatial_grid_shape_and_determinism_across_worker_modes(tmp_path):
    root = tmp_path / "g"
    root.mkdir()
    make_video(root / "a.mp4", num_frames=30)
    make_video(root / "b.mp4", num_frames=18)
    grid = extract_folder(root, tmp_path / "grid.h5", opts(spatial_grid=2), progress=False)
    assert sorted(grid.done) == ["a", "b"]
    store = FeatureStore(tmp_path / "grid.h5")
    assert store["a"].features.shape == ((30 - 8) // 4 + 1, 64, 2, 2) and store.spatial_grid == 2
    extract_folder(root, tmp_path / "w2.h5", opts(store_dtype="float32"), progress=False)
    extract_folder(root, tmp_path / "w0.h5", opts(store_dtype="float32", workers=0, batch_size=3), progress=False)
    two, zero = FeatureStore(tmp_path / "w2.h5"), FeatureStore(tmp_path / "w0.h5")
    for vid in ("a", "b"):
        np.testing.assert_allclose(two[vid].features, zero[vid].features, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(two[vid].timestamps, zero[vid].timestamps)
    pooled = store["a"].features.astype(np.float32).mean(axis=(2, 3))
    np.testing.assert_allclose(pooled, two["a"].features, rtol=2e-2, atol=2e-2)


def test_option_mismatch_refused_then_overwrite_and_skip(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    make_video(root / "a.mp4", num_frames=20)
    out = tmp_path / "m.h5"
    extract_folder(root, out, opts(), progress=False)
    again = extract_folder(root, out, opts(workers=1, batch_size=2), progress=False)  # runtime options may differ
    assert again.skipped == ["a"] and again.done == []
    with pytest.raises(TadInputError, match="different settings"):
        extract_folder(root, out, opts(clip_stride=2), progress=False)
    redone = extract_folder(root, out, opts(clip_stride=2, overwrite=True), progress=False)
    assert redone.done == ["a"]
    assert FeatureStore(out).attrs["options"]["clip_stride"] == 2


def test_bad_options_are_one_line_errors(tmp_path):
    root = tmp_path / "o"
    root.mkdir()
    make_video(root / "a.mp4", num_frames=10)
    with pytest.raises(TadInputError, match="--random-init"):
        extract_folder(root, tmp_path / "o.h5", opts(random_init=False), progress=False)
    with pytest.raises(TadInputError, match="unknown backbone"):
        extract_folder(root, tmp_path / "o.h5", opts(backbone="nope"), progress=False)
    with pytest.raises(TadInputError, match="no videos"):
        extract_folder(tmp_path, tmp_path / "o.h5", opts(exts=("avi",)), progress=False)


def test_recursive_ids_and_video_list(tmp_path):
    root = tmp_path / "r"
    (root / "sub").mkdir(parents=True)
    make_video(root / "top.mp4", num_frames=12)
    make_video(root / "sub" / "deep.mp4", num_frames=12)
    out = tmp_path / "r.h5"
    summary = extract_folder(root, out, opts(recursive=True), progress=False)
    assert sorted(summary.done) == ["sub/deep", "top"]
    assert sorted(FeatureStore(out).videos) == ["sub/deep", "top"]
    listing = tmp_path / "list.txt"
    listing.write_text("sub/deep\n# comment\nmissing\n")
    picked = extract_folder(root, tmp_path / "l.h5", opts(), video_list=listing, progress=False)
    assert picked.done == ["sub/deep"]
    assert [os.path.basename(p) for p in picked.failed] == ["missing"]
