"""Frame times, fps resampling, clip windows, chunked reading and frame transforms."""
from __future__ import annotations

import os

import decord
import numpy as np
import pytest
import torch

from extract_video_utils import grey_level, make_video
from tad.errors import TadInputError
from tad.features.clip_sampling import clip_windows
from tad.features.decoding import ChunkedFrameReader, frame_times, open_video, resample_timeline
from tad.features.frame_transforms import ClipTransform, FrameGeometry, normalize_clips


def frame_number(frame: np.ndarray) -> int:
    return int(round(grey_level(frame) / 3))


# ---- clip windows ------------------------------------------------------------------------
def test_clip_windows_arithmetic_and_thumos_centres():
    windows = clip_windows(100, clip_len=16, frame_interval=1, clip_stride=4)
    assert len(windows) == (100 - 16) // 4 + 1 == 22
    assert not windows.padded
    assert windows.frame_index[3].tolist() == list(range(12, 28))
    times = np.arange(100) / 30.0
    centres = windows.centres(times, np.full(100, 1 / 30.0))
    np.testing.assert_allclose(centres, (4 * np.arange(22) + 8) / 30.0, atol=1e-12)


def test_clip_windows_interval_and_padding():
    windows = clip_windows(40, clip_len=8, frame_interval=2, clip_stride=5)
    span = 7 * 2 + 1
    assert len(windows) == (40 - span) // 5 + 1
    assert windows.frame_index[1].tolist() == [5, 7, 9, 11, 13, 15, 17, 19]
    short = clip_windows(3, clip_len=8, frame_interval=1, clip_stride=4)
    assert short.padded and len(short) == 1
    assert short.frame_index[0].tolist() == [0, 1, 2, 2, 2, 2, 2, 2]
    centres = short.centres(np.array([0.0, 0.1, 0.2]), np.full(3, 0.1))
    assert centres.tolist() == pytest.approx([0.15])


# ---- resampling by time ----------------------------------------------------------------------
def test_resample_native_and_same_rate_keep_every_frame():
    pts = np.arange(50) / 30.0
    durations = np.full(50, 1 / 30.0)
    native = resample_timeline(pts, durations, "native")
    assert native.source_index.tolist() == list(range(50))
    same = resample_timeline(pts.astype(np.float32).astype(np.float64), durations, 30)  # rounded container times
    assert same.source_index.tolist() == list(range(50))
    np.testing.assert_allclose(same.times, pts, atol=1e-6)


def test_resample_60_to_30_and_15_to_30():
    pts60 = np.arange(120) / 60.0
    down = resample_timeline(pts60, np.full(120, 1 / 60.0), 30)
    assert down.source_index.tolist() == list(range(0, 120, 2))
    pts15 = np.arange(15) / 15.0
    up = resample_timeline(pts15, np.full(15, 1 / 15.0), 30)
    assert len(up) == 30
    assert up.source_index.tolist() == [i // 2 for i in range(30)]


def test_resample_vfr_picks_frame_showing_at_each_time():
    pts = np.array([0.0, 0.1, 0.15, 0.5, 0.52])  # irregular
    durations = np.array([0.1, 0.05, 0.35, 0.02, 0.1])
    timeline = resample_timeline(pts, durations, 10)
    # t = 0.0, 0.1, ..., 0.5 (end = 0.62)
    assert timeline.source_index.tolist() == [0, 1, 2, 2, 2, 3, 4]
    np.testing.assert_allclose(timeline.times, np.arange(7) / 10.0)


# ---- decoding ----------------------------------------------------------------------------------
def test_frame_times_match_decord_on_real_footage(real_videos_dir):
    for name in ("highjump.mp4", "tennis26.mp4"):
        path = real_videos_dir / name
        reader = open_video(path)
        pts, durations = frame_times(reader)
        own = decord.VideoReader(str(path)).get_frame_timestamp(np.arange(len(reader)))
        np.testing.assert_allclose(pts, own[:, 0], atol=1e-9)
        assert np.all(np.diff(pts) > 0)
        assert durations[-1] == pytest.approx(own[-1, 1] - own[-1, 0])
        assert durations[:-1] == pytest.approx(np.diff(own[:, 0]))


def test_vfr_file_frame_times_and_durations(tmp_path):
    pts_ms = [0, 33, 66, 100, 300, 500, 533, 566, 600]
    path = make_video(tmp_path / "vfr.mp4", pts_ms=pts_ms)
    reader = open_video(path)
    pts, durations = frame_times(reader)
    np.testing.assert_allclose(pts, np.array(pts_ms) / 1000.0, atol=2e-3)
    assert durations[3] == pytest.approx(0.2, abs=2e-3)  # gap to the next frame, not 1 / avg fps
    timeline = resample_timeline(pts, durations, 10)  # every 0.1 s
    frames = ChunkedFrameReader(reader, timeline.source_index, chunk_size=4).get(0, len(timeline))
    shown = [frame_number(f) for f in frames]
    expected = [int(np.searchsorted(np.array(pts_ms), t * 1000 + 1, side="right") - 1) for t in timeline.times]
    assert shown == expected
    assert shown[:6] == [0, 3, 3, 4, 4, 5]


def test_chunked_reader_matches_per_frame_decoding_and_is_forward_only(tmp_path):
    path = make_video(tmp_path / "v.mp4", num_frames=40)
    reader = open_video(path)
    index = np.array([0, 0, 1, 3, 5, 6, 7, 7, 9, 12, 20, 21, 22, 39])
    chunked = ChunkedFrameReader(reader, index, chunk_size=3)
    first = chunked.get(0, 8)
    second = chunked.get(5, 14)  # overlaps the previous run
    assert [frame_number(f) for f in first] == index[:8].tolist()
    assert [frame_number(f) for f in second] == index[5:14].tolist()
    direct = decord.VideoReader(str(path))
    np.testing.assert_array_equal(second[-1], direct[39].asnumpy())
    with pytest.raises(ValueError, match="forward-only"):
        chunked.get(2, 4)


def test_open_video_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    for path, pattern in ((empty, "empty file"), (text, "cannot decode"), (tmp_path / "nope.mp4", "no such file")):
        with pytest.raises(TadInputError, match=pattern) as info:
            open_video(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


# ---- transforms ----------------------------------------------------------------------------------
def test_geometry_short_side_crop_and_square_resize():
    geom = FrameGeometry(short_side=64, crop=56)
    assert geom.decode_size(320, 180) == (114, 64)
    assert geom.decode_size(180, 320) == (64, 114)
    frames = np.zeros((2, 64, 114, 3), np.uint8)
    assert geom.crop_frames(frames).shape == (2, 56, 56, 3)
    assert geom.crop_box(114, 64) == (4, 29, 56, 56)
    square = FrameGeometry(resize=32)
    assert square.decode_size(320, 180) == (32, 32)
    assert square.crop_frames(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 32, 32, 3)


def test_clip_transform_and_normalize_agree():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(4, 64, 80, 3), dtype=np.uint8)
    mean, std = (0.45, 0.4, 0.35), (0.225, 0.25, 0.2)
    out = ClipTransform(mean, std, short_side=64, crop=48)(frames)
    assert out.shape == (3, 4, 48, 48)
    crop = frames[:, 8:56, 16:64]  # no resize needed: short side already 64
    expected = normalize_clips(torch.from_numpy(crop)[None], mean, std)[0]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    pixel = (frames[1, 8, 16, 2] / 255.0 - 0.35) / 0.2
    assert out[2, 1, 0, 0].item() == pytest.approx(pixel, abs=1e-5)
    resized = ClipTransform(mean, std, resize=32)(frames)
    assert resized.shape == (3, 4, 32, 32)


def test_pyav_source_matches_decord_frames_and_fills_missing_indices(tmp_path, real_videos_dir):
    from tad.features.decoding import PyAVFrameSource

    path = make_video(tmp_path / "v.mp4", num_frames=30)
    pts, _ = frame_times(open_video(path))
    source = PyAVFrameSource(path, pts, 64, 48)
    frames = source.get_batch([0, 1, 5, 5, 17, 29])
    assert frames.shape == (6, 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_number(f) for f in frames] == [0, 1, 5, 5, 17, 29]
    with pytest.raises(ValueError, match="forward-only"):
        source.get_batch([3])
    # highjump.mp4: the container indexes 727 frames, the decoder outputs 726; the last
    # index is served by the frame shown before it, never an error
    real = real_videos_dir / "highjump.mp4"
    reader = open_video(real)
    pts, _ = frame_times(reader)
    tail = PyAVFrameSource(real, pts, 160, 90).get_batch([700, 725, 726])
    expected = decord.VideoReader(str(real), width=160, height=90).get_batch([700, 725]).asnumpy()
    assert np.abs(tail[:2].astype(int) - expected.astype(int)).mean() < 3.0  # two scalers, same frames
    np.testing.assert_array_equal(tail[2], tail[1])


def test_pyav_source_memory_does_not_grow_while_the_caller_waits(tmp_path):
    """decord's decoder thread decodes ahead while its caller waits; the pull source must not."""
    import time

    from tad.features.decoding import PyAVFrameSource

    path = make_video(tmp_path / "long.mp4", num_frames=600, width=320, height=240)
    pts, _ = frame_times(open_video(path))
    source = PyAVFrameSource(path, pts, 320, 240)

    def rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    source.get_batch(list(range(0, 60)))
    before = rss_mib()
    for start in range(60, 600, 60):
        source.get_batch(list(range(start, start + 60)))
        time.sleep(0.05)  # a slow consumer
    assert rss_mib() - before < 40  # 540 more frames of 230 KB would be > 120 MiB if retained
