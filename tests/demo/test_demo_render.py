"""The synthetic demo videos: decodable, deterministic, and consistent with their annotations."""
from __future__ import annotations

import json

import decord
import numpy as np
import pytest

from tad.demo.render import ACTION_CLASSES, CLASS_COLORS, draw_frames, plan_dataset, plan_video, render_dataset
from tad.eval.annotations import load_annotations

SMALL = dict(size=(64, 80), min_duration=8.0, max_duration=9.0, action_len=(1.5, 2.0))


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    # 4 videos (2 Validation, 2 Test), 8-9 s each
    return render_dataset(tmp_path_factory.mktemp("demo_render"), num_videos=4, seed=5, **SMALL)


def _color_pixels(frames: np.ndarray, color) -> np.ndarray:
    """Per frame, the number of pixels within 60 of ``color`` in every channel. frames (F, H, W, 3)."""
    diff = np.abs(frames.astype(np.int16) - np.array(color, dtype=np.int16))
    return (diff.max(axis=-1) < 60).sum(axis=(1, 2))


def test_videos_decode_with_expected_frames_size_and_fps(small_dataset):
    assert len(small_dataset.plans) == 4
    for plan in small_dataset.plans:
        reader = decord.VideoReader(str(small_dataset.video_dir / f"{plan.video_id}.mp4"))
        assert len(reader) == plan.num_frames
        assert reader[0].shape == (64, 80, 3)
        assert reader.get_avg_fps() == pytest.approx(15.0)
        assert 8.0 <= plan.duration <= 9.0


def test_annotations_match_what_was_drawn(small_dataset):
    ann = load_annotations(small_dataset.ann_file)
    drawn = sorted({a.label for p in small_dataset.plans for a in p.actions}, key=ACTION_CLASSES.index)
    assert ann.classes == drawn
    raw = json.loads(small_dataset.ann_file.read_text())["database"]
    assert {v["subset"] for v in raw.values()} == {"Validation", "Test"}
    checked = 0
    for plan in small_dataset.plans:
        video = ann.videos[plan.video_id]
        assert video.duration == pytest.approx(plan.num_frames / 15.0)
        assert len(video.labels) == len(plan.actions) >= 1
        frames = decord.VideoReader(str(small_dataset.video_dir / f"{plan.video_id}.mp4")).get_batch(
            list(range(plan.num_frames))).asnumpy()
        frame_times = np.arange(plan.num_frames) / 15.0
        inside_any = np.zeros(plan.num_frames, dtype=bool)
        for (t0, t1), label in zip(video.segments, video.labels):
            name = ann.classes[label]
            inside = (frame_times >= t0 - 1e-6) & (frame_times < t1 - 1e-6)
            inside_any |= inside
            visible = _color_pixels(frames[inside], CLASS_COLORS[name]) >= 20
            # the flashing diamond is off 40% of the time; every other shape is always visible
            assert visible.mean() >= (0.5 if name == "FlashDiamond" else 0.95), (plan.video_id, name)
            checked += 1
        for color in CLASS_COLORS.values():  # no action colour outside the annotated segments
            assert (_color_pixels(frames[~inside_any], color) < 5).all()
    assert checked >= 3


def test_deterministic_by_seed():
    a = plan_dataset(4, seed=3, **SMALL)
    b = plan_dataset(4, seed=3, **SMALL)
    c = plan_dataset(4, seed=4, **SMALL)
    assert a == b
    assert a != c
    np.testing.assert_array_equal(draw_frames(a[0], 0, 20), draw_frames(b[0], 0, 20))
    # chunked drawing equals drawing in one go
    np.testing.assert_array_equal(draw_frames(a[1], 0, 30), np.concatenate([draw_frames(a[1], 0, 13),
                                                                            draw_frames(a[1], 13, 30)]))


def test_rendered_files_identical_across_runs_and_workers(tmp_path):
    one = render_dataset(tmp_path / "one", num_videos=2, seed=9, **SMALL)
    two = render_dataset(tmp_path / "two", num_videos=2, seed=9, workers=2, **SMALL)
    for plan in one.plans:
        name = f"{plan.video_id}.mp4"
        assert (one.video_dir / name).read_bytes() == (two.video_dir / name).read_bytes()
    assert one.ann_file.read_text() == two.ann_file.read_text()


def test_classes_are_balanced_within_each_subset():
    plans = plan_dataset(24, seed=0)
    for subset in ("Validation", "Test"):
        labels = [a.label for p in plans if p.subset == subset for a in p.actions]
        counts = [labels.count(c) for c in ACTION_CLASSES]
        assert min(counts) >= 1 and max(counts) - min(counts) <= 1, (subset, counts)


def test_plan_places_non_overlapping_actions_inside_the_video():
    for seed in range(20):
        plan = plan_video("v", "Test", seed=seed)
        assert 20 * 15 <= plan.num_frames <= 60 * 15
        spans = sorted((a.start_frame, a.end_frame) for a in plan.actions)
        assert spans, "every video has at least one action"
        for (s0, e0), (s1, _) in zip(spans, spans[1:]):
            assert e0 + 15 <= s1  # at least 1 s apart
        assert spans[0][0] >= 15 and spans[-1][1] <= plan.num_frames - 15
        for a in plan.actions:
            assert 2 * 15 <= a.end_frame - a.start_frame <= 7 * 15
            assert a.label in ACTION_CLASSES
