"""OnlineSegmentTracker: start while running, segment by max_latency after the end, incremental Soft-NMS."""
import math
from dataclasses import dataclass

import torch

from tad.detectors.online_events import OnlineSegmentTracker


@dataclass
class P:
    position: int
    stride: int
    logits: torch.Tensor
    offsets: torch.Tensor
    activity: torch.Tensor | None = None


def _point(t, probs, back, ahead):
    p = torch.tensor(probs, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    return P(t, 1, torch.log(p / (1 - p))[None], torch.tensor([[back, ahead]], dtype=torch.float64))


def _run(tracker, profile, step=0.5):
    """profile[t] = (probs, back, ahead) of the level-0 point at step t (times t * step)."""
    log = []
    for t, (probs, back, ahead) in enumerate(profile):
        for ev in tracker.update([_point(t, probs, back, ahead)], t * step):
            log.append((t * step, ev))
    for ev in tracker.finish():
        log.append((len(profile) * step, ev))
    return log


def test_start_while_running_and_segment_after_end():
    # class 1 runs over steps 10..19 (5 s .. 9.5 s); its points predict the true boundaries
    profile = []
    for t in range(40):
        inside = 10 <= t < 20
        probs = [0.01, 0.9 if inside else 0.01]
        profile.append((probs, (t - 10) if inside else 1.0, (19 - t) if inside else 1.0))
    tracker = OnlineSegmentTracker(["a", "b"], threshold=0.5, max_latency=2.0)
    log = _run(tracker, profile)
    starts = [(now, ev) for now, ev in log if ev["event"] == "start"]
    segments = [(now, ev) for now, ev in log if ev["event"] == "segment"]
    assert len(starts) == 1 and starts[0][1]["label"] == "b"
    assert 5.0 <= starts[0][0] < 9.5 and abs(starts[0][1]["start"] - 5.0) < 1e-6  # emitted while it runs
    assert len(segments) >= 1
    best = max(segments, key=lambda x: x[1]["score"])
    assert best[1]["segment"] == [5.0, 9.5]
    assert all(9.5 <= now <= 9.5 + 2.0 for now, _ in segments)  # at the latest max_latency after the end
    # duplicates of the same action are decayed by Soft-NMS: only the best one stays above the threshold
    assert sum(1 for _, ev in segments if ev["score"] >= 0.5) == 1
    finals = tracker.segments()
    assert finals[0].label == 1 and finals[0].score >= 0.9 - 1e-6


def test_a_later_better_candidate_is_not_decayed_by_an_earlier_weaker_one():
    """As the offline Soft-NMS: a candidate is decayed only by higher-scoring ones. A coarse or later
    point often gives an action's best candidate after a weaker one: with the default hold
    (max_latency) the weaker one is still open when the better one arrives, and is decayed by it."""
    profile = [([0.0005], 1.0, 1.0)] * 30
    profile[10] = ([0.5], 6.0, 0.0)  # steps 4..10 = 2.0 .. 5.0 s, weaker
    profile[12] = ([0.9], 8.0, -1.5)  # steps 4..10.5 = 2.0 .. 5.25 s, better (IoU 0.92), 1 s later
    tracker = OnlineSegmentTracker(["a"], threshold=0.3, max_latency=2.0, voting_thresh=0.0)
    log = _run(tracker, profile)
    finals = tracker.segments()
    assert (finals[0].start, finals[0].end) == (2.0, 5.25) and abs(finals[0].score - 0.9) < 1e-9
    assert abs(finals[1].score - 0.5 * math.exp(-(6 / 6.5) ** 2 / 0.5)) < 1e-9  # decayed by the better one
    segments = [(now, ev) for now, ev in log if ev["event"] == "segment"]
    assert [ev["segment"] for _, ev in segments] == [[2.0, 5.25]]
    assert all(now <= 5.25 + 2.0 for now, _ in segments)


def test_score_voting_averages_the_overlapping_candidates():
    profile = [([0.0005], 1.0, 1.0)] * 30
    profile[10] = ([0.6], 6.0, 0.0)  # 2.0 .. 5.0 s
    profile[11] = ([0.6], 6.0, -0.6)  # 2.5 .. 5.2 s (IoU 2.5 / 3.2 with the first)
    tracker = OnlineSegmentTracker(["a"], threshold=0.3, max_latency=2.0, voting_thresh=0.7)
    _run(tracker, profile)
    best = tracker.segments()[0]  # the first (ties: the first final wins), boundaries voted:
    w = 2.5 / 3.2  # weights IoU x score: 1 x 0.6 for itself, w x 0.6 for the other
    assert abs(best.start - (2.0 + w * 2.5) / (1 + w)) < 1e-9 and abs(best.end - (5.0 + w * 5.2) / (1 + w)) < 1e-9


def test_segment_waits_at_most_max_latency_while_class_still_runs():
    # class 0 keeps running, but an early candidate ends at 2 s: it is final by 2 + 1 s
    profile = [([0.9], min(t, 2), 4 - t if t <= 4 else 0.5) for t in range(20)]
    tracker = OnlineSegmentTracker(["a"], threshold=0.5, max_latency=1.0)
    log = _run(tracker, profile, step=0.5)
    first = next(now for now, ev in log if ev["event"] == "segment")
    assert first <= 2.0 + 1.0


def test_activity_head_drives_start_events_and_end_anchored_points_the_segment():
    """With an activity head (the online configs), start events follow its per-step score, while
    end-anchored class scores (high only at / just after the end, signed end distance) give the segment."""
    tracker = OnlineSegmentTracker(["a", "b"], threshold=0.5, max_latency=2.0)
    log = []
    for t in range(30):  # class 1 runs over steps 10..19 (5 s .. 9.5 s)
        inside = 10 <= t <= 19
        act = torch.tensor([[0.01, 0.95 if inside else 0.02]], dtype=torch.float64)
        near_end = 18 <= t <= 21
        p = _point(t, [0.01, 0.9 if near_end else 0.01], t - 10, 19 - t)  # end distance < 0 after the end
        p.activity = torch.log(act / (1 - act))
        for ev in tracker.update([p], t * 0.5):
            log.append((t * 0.5, ev))
    starts = [(now, ev) for now, ev in log if ev["event"] == "start"]
    segments = [(now, ev) for now, ev in log if ev["event"] == "segment"]
    assert [(now, ev["label"], ev["start"]) for now, ev in starts] == [(5.0, "b", 5.0)]  # at the first running step
    assert tracker.activity[1] < 0.05  # the activity head's score, not the class scores
    assert segments and all(9.5 <= now <= 9.5 + 2.0 for now, _ in segments)
    best = max(segments, key=lambda x: x[1]["score"])
    assert best[1]["label"] == "b" and best[1]["segment"] == [5.0, 9.5]


def test_activity_runs_give_segments_scored_by_mean_activity():
    """run_thresholds: a run of steps with activity >= a level is, once it ends, a candidate
    [first - step/2, last + step/2] scored by its mean activity (no point candidates here)."""
    tracker = OnlineSegmentTracker(["a"], threshold=0.5, max_latency=2.0, pre_thresh=1.0, run_thresholds=(0.5,))
    log = []
    for t in range(20):  # steps 5..9 (2.5 s .. 4.5 s) at activity 0.8, else 0.1
        act = torch.tensor([[0.8 if 5 <= t <= 9 else 0.1]], dtype=torch.float64)
        p = _point(t, [0.9], 0.0, 1.0)
        p.activity = torch.log(act / (1 - act))
        for ev in tracker.update([p], t * 0.5):
            log.append((t * 0.5, ev))
    segments = [(now, ev) for now, ev in log if ev["event"] == "segment"]
    assert len(segments) == 1
    now, ev = segments[0]
    assert ev["segment"] == [2.25, 4.75] and abs(ev["score"] - 0.8) < 1e-3
    assert 4.75 <= now <= 4.75 + 2.0
    assert [(c.start, c.end) for c in tracker.segments()] == [(2.25, 4.75)]


def test_bad_options_are_rejected():
    import pytest

    with pytest.raises(ValueError):
        OnlineSegmentTracker(["a"], threshold=0)
    with pytest.raises(ValueError):
        OnlineSegmentTracker(["a"], max_latency=0)
