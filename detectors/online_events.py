"""From the per-step outputs of the continual detector to online events and segments.

``OnlineSegmentTracker.update(points, step_time)`` takes the pyramid points produced at
one input step (``ContinualSTPT.step``; batch of one) and the centre time of that step,
and returns the events it triggers:

* ``start`` -- class c is running: its probability at the newest points reached
  ``threshold`` while it was not running; the event carries the predicted start time.
  When the points carry ``activity`` (the causal model's per-step activity head), that
  probability is the activity head's, and the start time is the current step's.
  A class stops running after ``off_steps`` steps below ``threshold / 2``.
* ``segment`` -- a candidate segment is final. Every point gives, per class with
  probability above ``pre_thresh``, a candidate [start, end] (predicted from the point;
  the end may lie in the future). A candidate is *due* at the last step before
  ``max_latency`` seconds after its end, or earlier, ``hold`` seconds after its end, once
  its class stopped running. ``hold`` defaults to ``max_latency``: the end-anchored points
  of one action arrive over a few strides after its end, the coarse levels last, and the
  best of them must be seen before the others are judged. A point whose predicted end
  lies more than ``max_latency`` before the current step gives no candidate (it could
  only be emitted late).
  Due candidates go through the offline post-processing made incremental, per class: a
  Gaussian Soft-NMS in which each is decayed by the final segments and the still open
  candidates that scored higher than it and overlap it, and by the due ones ranked above
  it (as offline, never by a lower-scoring one; of equal ones, the first final wins);
  survivors above ``min_score`` are final, their boundaries replaced by the score x IoU
  weighted mean of the candidates of their class overlapping them by ``voting_thresh`` or
  more (score voting; 0 turns it off).
  ``segment`` events are returned for final segments scoring ``>= threshold``; every
  final segment goes to ``segments()`` (the ActivityNet result of the stream).
* activity runs -- with an activity head, every maximal run of steps where class c's
  activity stays >= a run threshold (``run_thresholds``, several levels as in TAG-style
  grouping) is, once it ends, a candidate [first step - half a step, last step + half a
  step] scored by its mean activity; it joins the point candidates in the Soft-NMS.
* ``activity`` -- after each update: (K,) per-class probability at the newest points
  (the activity head's when present, else the max over the new points' class scores):
  the per-frame online action detection score.

Work per step is bounded: open candidates live at most until ``max_latency`` after their end,
only the ``keep_final`` most recent final segments per class act as suppressors, and the
candidates kept for voting are those that ended less than ``2 * max_latency`` ago (at
most ``max_open`` per class).
Grid positions map to seconds through the step times seen so far (linear between steps,
extrapolated by the last step into the future).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OnlineSegmentTracker", "Candidate"]


@dataclass
class Candidate:
    label: int
    start: float
    end: float
    score: float
    born: float  # video time the candidate appeared


@dataclass
class _ClassState:
    running: bool = False
    below: int = 0
    open: list = field(default_factory=list)  # [Candidate]
    final: deque = field(default_factory=deque)  # recent final (start, end, score, raw score), not voted
    seen: deque = field(default_factory=deque)  # recent candidates (start, end, score), for voting


class OnlineSegmentTracker:
    """See the module docstring.

    Args:
        classes: class names, in model order.
        threshold: probability that starts a class, and minimum score of a ``segment`` event.
        max_latency: seconds after a candidate's end by which it is final at the latest.
        pre_thresh: minimum class probability of a candidate (as the offline ``pre_nms_thresh``).
        nms_sigma: Gaussian Soft-NMS: score *= exp(-IoU^2 / sigma).
        min_score: candidates decayed below this are dropped.
        min_length: minimum candidate length, seconds.
        hold: seconds after its end before a candidate whose class stopped running is due
            (None: ``max_latency``, the most accurate; smaller: earlier segment events).
        voting_thresh: IoU of the candidates averaged into a final segment's boundaries (0: no voting).
        off_steps: steps below ``threshold / 2`` before a class stops running.
        run_thresholds: with an activity head, each maximal run of steps whose activity of class c
            stays >= one of these gives a candidate (see the module docstring); () (default): none.
        keep_final: recent final segments per class kept as suppressors.
        max_open: open candidates kept per class (the best ones).
    """

    def __init__(self, classes, threshold: float = 0.3, max_latency: float = 2.0, pre_thresh: float = 0.001,
                 nms_sigma: float = 0.5, min_score: float = 0.001, min_length: float = 0.0, off_steps: int = 2,
                 keep_final: int = 50, max_open: int = 400,
                 run_thresholds: tuple[float, ...] = (), hold: float | None = None, voting_thresh: float = 0.7):
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if not max_latency > 0:
            raise ValueError(f"max_latency must be > 0, got {max_latency}")
        hold = max_latency if hold is None else hold
        if not 0 <= hold <= max_latency:
            raise ValueError(f"hold must be in [0, max_latency], got {hold}")
        if not 0 <= voting_thresh <= 1:
            raise ValueError(f"voting_thresh must be in [0, 1], got {voting_thresh}")
        self.hold, self.voting_thresh = float(hold), float(voting_thresh)
        self.classes = list(classes)
        self.threshold, self.max_latency, self.pre_thresh = threshold, max_latency, pre_thresh
        self.nms_sigma, self.min_score, self.min_length = nms_sigma, min_score, min_length
        self.off_steps, self.keep_final, self.max_open = off_steps, keep_final, max_open
        self.run_thresholds = np.asarray(sorted(run_thresholds), dtype=np.float64)  # (R,)
        shape = (len(self.run_thresholds), len(self.classes))
        self.run_start = np.full(shape, np.nan)  # (R, K) time of a run's first step, NaN: no run
        self.run_sum, self.run_len = np.zeros(shape), np.zeros(shape)
        self.run_last = np.zeros(shape)  # time of its last step
        self.state = [_ClassState() for _ in self.classes]
        self.times: list[float] = []
        self.final_segments: list[Candidate] = []
        self.activity = np.zeros(len(self.classes))
        self.now = 0.0
        self.late = 0  # points dropped: their predicted end lay more than max_latency in the past

    # ---- grid -> seconds -------------------------------------------------------------
    def _seconds(self, x: float) -> float:
        ts = self.times
        n = len(ts)
        if n == 1:
            return ts[0] + x * (self._step() if n else 1.0)
        if x <= 0:
            return ts[0] + x * (ts[1] - ts[0])
        if x >= n - 1:
            return ts[-1] + (x - (n - 1)) * (ts[-1] - ts[-2])
        i = int(math.floor(x))
        return ts[i] + (x - i) * (ts[i + 1] - ts[i])

    def _step(self) -> float:
        return self.times[-1] - self.times[-2] if len(self.times) > 1 else 1.0

    # ---- main --------------------------------------------------------------------------
    def update(self, points, step_time: float) -> list[dict]:
        """``points``: objects with ``position``, ``stride``, ``logits`` (1, K), ``offsets`` (1, 2)."""
        self.times.append(float(step_time))
        self.now = float(step_time)
        events: list[dict] = []
        activity = np.zeros(len(self.classes))
        best_start = np.zeros(len(self.classes))
        for p in points:
            probs = 1.0 / (1.0 + np.exp(-p.logits[0].double().cpu().numpy()))  # (K,)
            off = p.offsets[0].double().cpu().numpy()
            start = self._seconds(p.position - off[0] * p.stride)
            end = self._seconds(p.position + off[1] * p.stride)
            better = probs > activity
            best_start[better] = start
            activity = np.maximum(activity, probs)
            if end - start <= self.min_length:
                continue
            if end + self.max_latency < self.now:  # predicted to have ended too long ago: it would break
                self.late += 1                     # the latency bound, so it is not a candidate
                continue
            for c in np.nonzero(probs > self.pre_thresh)[0]:
                self._add(int(c), Candidate(int(c), start, end, float(probs[c]), self.now))
        heads = [p.activity for p in points if getattr(p, "activity", None) is not None]
        if heads:  # the model's per-step activity head: which classes are running now
            activity = 1.0 / (1.0 + np.exp(-heads[0][0].double().cpu().numpy()))
            best_start[:] = self.now  # started by now (end-anchored class scores say little about the start)
            self._activity_runs(activity)
        self.activity = activity
        for c, st in enumerate(self.state):
            if activity[c] >= self.threshold:
                st.below = 0
                if not st.running:
                    st.running = True
                    events.append(dict(event="start", label=self.classes[c], start=round(float(best_start[c]), 3),
                                       score=round(float(activity[c]), 4)))
            elif st.running:
                st.below = st.below + 1 if activity[c] < self.threshold / 2 else 0
                if st.below >= self.off_steps:
                    st.running = False
            if len(st.open) > self.max_open:
                st.open.sort(key=lambda cand: -cand.score)
                del st.open[self.max_open:]
            while st.seen and (st.seen[0][1] < self.now - 2 * self.max_latency or len(st.seen) > self.max_open):
                st.seen.popleft()
            events += self._finalize(c, st, flush=False)
        return events

    def _activity_runs(self, activity: np.ndarray | None) -> None:
        """Grow, or close into candidates, the runs of steps with activity >= each run threshold.

        ``activity`` (K,) at the current step; None closes every run (end of stream). A run over
        steps s..e gives [time(s) - step/2, time(e) + step/2] scored by its mean activity.
        """
        if not len(self.run_thresholds):
            return
        inside = (np.zeros_like(self.run_sum, dtype=bool) if activity is None
                  else activity[None, :] >= self.run_thresholds[:, None])  # (R, K)
        running = ~np.isnan(self.run_start)
        half = 0.5 * self._step()
        for r, c in zip(*np.nonzero(running & ~inside)):  # runs that just ended
            start, end = self.run_start[r, c] - half, self.run_last[r, c] + half
            score = self.run_sum[r, c] / self.run_len[r, c]
            if end - start > self.min_length and score > self.min_score:
                self._add(int(c), Candidate(int(c), float(start), float(end), float(score), self.now))
        self.run_start[running & ~inside] = np.nan
        if activity is None:
            return
        begin = inside & ~running
        self.run_start[begin] = self.now
        self.run_sum[begin], self.run_len[begin] = 0.0, 0.0
        self.run_sum[inside] += np.broadcast_to(activity, inside.shape)[inside]
        self.run_len[inside] += 1
        self.run_last[inside] = self.now

    def _add(self, c: int, cand: Candidate) -> None:
        st = self.state[c]
        st.open.append(cand)
        if self.voting_thresh > 0:
            st.seen.append((cand.start, cand.end, cand.score))

    def finish(self) -> list[dict]:
        """End of stream: every open candidate is due."""
        if self.times:
            self._activity_runs(None)
        events: list[dict] = []
        for c, st in enumerate(self.state):
            st.running = False
            events += self._finalize(c, st, flush=True)
        return events

    def segments(self, max_segments: int | None = None) -> list[Candidate]:
        """Final segments, best first (the ``max_segments`` best if given)."""
        out = sorted(self.final_segments, key=lambda cand: -cand.score)
        return out[:max_segments] if max_segments else out

    # ---- incremental Soft-NMS --------------------------------------------------------------
    def _finalize(self, c: int, st: _ClassState, flush: bool) -> list[dict]:
        if not st.open:
            return []
        now = self.now
        due, still = [], []
        step = self._step()
        for cand in st.open:
            if (flush or now + step > cand.end + self.max_latency  # the next step would break the bound
                    or (not st.running and now + step > cand.end + self.hold)):
                due.append(cand)
            else:
                still.append(cand)
        if not due:
            return []
        st.open = still
        due.sort(key=lambda cand: -cand.score)
        sup = list(st.final)
        open_arr = np.array([(o.start, o.end, o.score) for o in still]) if still else np.zeros((0, 3))
        events = []
        seen = np.array(st.seen) if st.seen else np.zeros((0, 3))  # (S, 3) start, end, score
        for cand in due:
            score = cand.score
            decay = 0.0
            if sup:
                arr = np.array(sup)
                arr = arr[arr[:, 3] >= cand.score]  # as offline: only final segments ranked above it (ties:
                                                    # the first one final)
                decay += float(np.sum(_iou(cand.start, cand.end, arr[:, 0], arr[:, 1]) ** 2))
            if len(open_arr):
                higher = open_arr[open_arr[:, 2] > cand.score]
                if len(higher):
                    decay += float(np.sum(_iou(cand.start, cand.end, higher[:, 0], higher[:, 1]) ** 2))
            score *= math.exp(-decay / self.nms_sigma)
            if score < self.min_score:
                continue
            start, end = self._vote(cand, seen)
            final = Candidate(c, start, end, score, cand.born)
            self.final_segments.append(final)
            sup.append((cand.start, cand.end, score, cand.score))
            st.final.append((cand.start, cand.end, score, cand.score))
            if len(st.final) > self.keep_final:
                st.final.popleft()
            if score >= self.threshold:
                events.append(dict(event="segment", label=self.classes[c],
                                   segment=[round(start, 3), round(end, 3)], score=round(score, 4)))
        return events

    def _vote(self, cand: Candidate, seen: np.ndarray) -> tuple[float, float]:
        """(start, end) of a final candidate: the score x IoU weighted mean of the seen candidates
        (its class, ``seen`` (S, 3)) overlapping it by ``voting_thresh`` or more, itself included."""
        if self.voting_thresh <= 0 or not len(seen):
            return cand.start, cand.end
        iou = _iou(cand.start, cand.end, seen[:, 0], seen[:, 1])
        weights = np.where(iou >= self.voting_thresh, iou * seen[:, 2], 0.0)
        total = float(weights.sum())
        if total <= 0:
            return cand.start, cand.end
        return float(weights @ seen[:, 0]) / total, float(weights @ seen[:, 1]) / total


def _iou(s: float, e: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(e, ends) - np.maximum(s, starts), 0, None)
    union = (e - s) + (ends - starts) - inter
    return inter / np.maximum(union, 1e-8)
