"""Checking an annotation file against a feature store before training.

Contract: :func:`check_data` returns a :class:`DataReport` listing every problem found,
each naming the file, the video (where there is one) and what is wrong; nothing is
raised for problems in the data (only for a file that cannot be read at all). Problems
are *errors* (training or scoring would be wrong) or *warnings* (worth a look):

errors
  * a video annotated but missing from the store, or whose extraction failed;
  * a segment with zero or negative length, or entirely outside ``[0, duration]``;
  * a store time span that disagrees with the annotated duration by more than one clip
    (features drifting out of line with the timeline, e.g. a wrong frame rate);
  * a bad ``duration`` / ``segment`` entry; with a config: feature width or class count
    that does not fit the model, an empty training subset.
warnings
  * a stored video with no annotation entry;
  * a segment partly outside the video (it is clipped), or shorter than one feature step;
  * a class with fewer than ``min_instances`` training instances;
  * a label that appears only in the test subset(s) (its AP can only be 0);
  * with a config: actions longer than the training window ``max_seq_len``.

Subsets: the training subsets are the config's ``train_subset``; the test subsets its
``val_subset``/``test_subset``. Without a config, subsets whose name contains ``test``
are test subsets (or ``validation`` when there is no such subset but a ``training`` one),
the others are training subsets.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from tad.errors import TadInputError

__all__ = ["DataReport", "Problem", "check_data", "guess_subsets", "clip_seconds"]

#: seconds: segment ends this far beyond the video still count as inside
_EDGE_TOLERANCE = 1e-3


@dataclass
class Problem:
    level: str  # 'error' | 'warning'
    file: str
    video: str | None
    message: str

    def line(self) -> str:
        where = f"{self.file}: video {self.video}" if self.video is not None else self.file
        return f"{self.level}: {where}: {self.message}"


@dataclass
class DataReport:
    problems: list[Problem] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def error(self, file: object, video: str | None, message: str) -> None:
        self.problems.append(Problem("error", str(file), video, message))

    def warning(self, file: object, video: str | None, message: str) -> None:
        self.problems.append(Problem("warning", str(file), video, message))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]


def guess_subsets(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(training subsets, test subsets) from subset names (see module docstring)."""
    names = list(dict.fromkeys(names))
    test = [n for n in names if "test" in n.lower()]
    if not test and any(n.lower() == "training" for n in names):
        test = [n for n in names if n.lower() == "validation"]
    train = [n for n in names if n not in test]
    return train, test


def clip_seconds(options: dict, attrs: dict, step: float) -> float:
    """Length of one clip in seconds from the store's extraction options and the video's fps;
    ``step`` (the clip spacing) when they are not known."""
    try:
        span = (int(options["clip_len"]) - 1) * int(options.get("frame_interval", 1)) + 1
        fps = options.get("fps")
        fps = float(fps) if isinstance(fps, (int, float)) and not isinstance(fps, bool) else float(attrs["fps"])
        if span > 0 and fps > 0:
            return max(span / fps, step)
    except (KeyError, TypeError, ValueError):
        pass
    return step


def _number(value) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _read_database(ann_file: Path, report: DataReport) -> dict[str, dict]:
    """``{vid: {"subset", "duration" (float or None), "segments": [(j, label, start, end)]}}``;
    bad entries become problems instead of exceptions."""
    if not ann_file.is_file():
        raise TadInputError(ann_file, "file not found" if not ann_file.exists() else "not a file")
    try:
        data = json.loads(ann_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TadInputError(ann_file, f"not valid JSON ({exc})") from None
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise TadInputError(ann_file, "missing 'database' (expected tad/ActionFormer/ActivityNet annotations; "
                                      "see `tad convert-annotations`)")
    videos = {}
    for vid, entry in database.items():
        if not isinstance(entry, dict):
            report.error(ann_file, vid, "entry is not an object")
            continue
        duration = _number(entry.get("duration"))
        if duration is None or duration <= 0:
            report.error(ann_file, vid, f"duration {entry.get('duration')!r} is not a positive number")
            duration = None
        segments = []
        for j, ann in enumerate(entry.get("annotations") or []):
            seg = ann.get("segment") if isinstance(ann, dict) else None
            label = ann.get("label") if isinstance(ann, dict) else None
            if not isinstance(seg, (list, tuple)) or len(seg) != 2 or None in (_number(seg[0]), _number(seg[1])):
                report.error(ann_file, vid, f"annotation {j}: 'segment' must be [start, end] numbers, got {seg!r}")
                continue
            if not isinstance(label, str) or not label:
                report.error(ann_file, vid, f"annotation {j}: 'label' must be a non-empty string, got {label!r}")
                continue
            segments.append((j, label, _number(seg[0]), _number(seg[1])))
        videos[str(vid)] = {"subset": str(entry.get("subset", "")), "duration": duration, "segments": segments}
    return videos


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f}"


def check_data(ann_file: str | Path, feature_store: str | Path, min_instances: int = 5,
               train_subsets: Sequence[str] | None = None, test_subsets: Sequence[str] | None = None,
               max_seq_len: int | None = None, num_classes: int | None = None,
               in_channels: int | None = None) -> DataReport:
    """Check ``ann_file`` against ``feature_store``; see the module docstring for what is reported.

    Args:
        ann_file: annotation JSON (``tad convert-annotations`` output, ActionFormer or ActivityNet).
        feature_store: HDF5 store from ``tad extract`` / ``tad import-features``.
        min_instances: classes with fewer training instances than this get a warning.
        train_subsets / test_subsets: subset names (default: guessed, see :func:`guess_subsets`).
        max_seq_len: the config's training window in steps (actions longer than it are reported).
        num_classes / in_channels: the config's model sizes, checked against the data.
    """
    from tad.features.store import FeatureStore

    if min_instances < 1:
        raise TadInputError("--min-instances", f"must be >= 1, got {min_instances}")
    ann_file, feature_store = Path(ann_file), Path(feature_store)
    report = DataReport()
    videos = _read_database(ann_file, report)
    if not feature_store.is_file():
        raise TadInputError(feature_store, "file not found" if not feature_store.exists() else "not a file")
    store = FeatureStore(feature_store)
    stored = set(store.videos)
    failed = store.failed
    options = store.options if isinstance(store.options, dict) else {}

    subsets = list(dict.fromkeys(v["subset"] for v in videos.values()))
    guessed_train, guessed_test = guess_subsets(subsets)
    train = [s.lower() for s in (train_subsets if train_subsets is not None else guessed_train)]
    test = [s.lower() for s in (test_subsets if test_subsets is not None else guessed_test)]
    test = [s for s in test if s not in train]

    # ---- videos: annotated vs stored
    for vid, video in videos.items():
        if vid not in stored:
            if vid in failed:
                report.error(feature_store, vid, f"annotated in {ann_file.name} but its extraction failed: {failed[vid]}")
            else:
                report.error(feature_store, vid, f"annotated in {ann_file.name} (subset {video['subset']}) "
                                                 "but missing from the store")
    for vid in sorted(stored - set(videos)):
        report.warning(feature_store, vid, f"stored but has no entry in {ann_file.name} (not used)")

    # ---- per video: segments and timeline
    steps_per_video = []
    action_steps = []
    for vid, video in videos.items():
        duration = video["duration"]
        step = clip_s = None
        if vid in stored:
            ts = np.asarray(store.read(vid, 0, None).timestamps, dtype=np.float64) if store.num_steps(vid) else None
            if ts is None or len(ts) == 0:
                report.error(feature_store, vid, "has no feature steps")
            else:
                step = float(np.median(np.diff(ts))) if len(ts) > 1 else float(duration or 1.0)
                attrs = store.video_attrs(vid)
                clip_s = clip_seconds(options, attrs, step)
                steps_per_video.append(len(ts))
                if duration is not None:
                    span_end = float(ts[-1]) + clip_s / 2  # where the last clip ends
                    span_start = float(ts[0]) - clip_s / 2
                    # one clip, plus the stride the last clip may stop short of the end by
                    tolerance = clip_s + step
                    if abs(span_end - duration) > tolerance or span_start > tolerance:
                        stored_dur = attrs.get("duration")
                        extra = f"; the video file was {_fmt(float(stored_dur))} s at extraction" \
                            if isinstance(stored_dur, (int, float)) else ""
                        report.error(feature_store, vid,
                                     f"features span {_fmt(max(span_start, 0.0))}-{_fmt(span_end)} s but {ann_file.name} "
                                     f"says the video lasts {_fmt(duration)} s (off by more than one clip, "
                                     f"{_fmt(clip_s)} s + one step{extra}): features and timeline drift apart "
                                     "(wrong fps or a different video file?)")
        for j, label, start, end in video["segments"]:
            seg = f"segment {j} [{_fmt(start)}, {_fmt(end)}] ({label})"
            length = end - start
            if length < 0:
                report.error(ann_file, vid, f"{seg} has negative length ({_fmt(length)} s)")
                continue
            if length == 0:
                report.error(ann_file, vid, f"{seg} has zero length")
                continue
            if duration is not None:
                if start >= duration or end <= 0:
                    report.error(ann_file, vid, f"{seg} lies outside the video (0-{_fmt(duration)} s)")
                    continue
                if start < -_EDGE_TOLERANCE or end > duration + _EDGE_TOLERANCE:
                    report.warning(ann_file, vid, f"{seg} extends beyond the video (0-{_fmt(duration)} s); "
                                                  "it is clipped")
            if step is not None:
                action_steps.append(length / step)
                if length < step:
                    report.warning(ann_file, vid, f"{seg} is shorter than one feature step ({_fmt(step)} s): "
                                                  "the detector cannot place its boundaries")
                if max_seq_len is not None and length / step > max_seq_len:
                    report.warning(ann_file, vid, f"{seg} spans {length / step:.0f} steps, more than the "
                                                  f"training window max_seq_len={max_seq_len}")

    # ---- classes
    train_counts: Counter = Counter()
    test_counts: Counter = Counter()
    for video in videos.values():
        subset = video["subset"].lower()
        for _, label, start, end in video["segments"]:
            if end > start:
                if subset in train:
                    train_counts[label] += 1
                elif subset in test:
                    test_counts[label] += 1
    labels = sorted(set(train_counts) | set(test_counts))
    if not train_counts:
        report.error(ann_file, None, f"no annotated segments in the training subset(s) {train or '(none)'}")
    for label in labels:
        if label not in train_counts:
            report.warning(ann_file, None, f"label {label!r} appears only in the test subset(s) "
                                           f"{', '.join(test)} ({test_counts[label]} instances): "
                                           "it cannot be learned and its AP will be 0")
        elif train_counts[label] < min_instances:
            report.warning(ann_file, None, f"class {label!r} has only {train_counts[label]} training "
                                           f"instance(s) (< {min_instances})")
    all_labels = {label for v in videos.values() for _, label, _, _ in v["segments"]}
    if num_classes is not None and num_classes < len(all_labels):
        report.error(ann_file, None, f"{len(all_labels)} classes in the annotations but the config's "
                                     f"num_classes is {num_classes}")
    if in_channels is not None and stored:
        if store.feature_dim != in_channels:
            report.error(feature_store, None, f"features are {store.feature_dim}-d but the config's "
                                              f"model.in_channels is {in_channels}")

    report.stats = dict(
        videos=len(videos), stored=len(stored), classes=len(all_labels),
        train_subsets=train, test_subsets=test,
        segments=sum(len(v["segments"]) for v in videos.values()),
        steps_per_video=(int(np.min(steps_per_video)), int(np.median(steps_per_video)), int(np.max(steps_per_video)))
        if steps_per_video else None,
        action_steps=(float(np.min(action_steps)), float(np.median(action_steps)), float(np.max(action_steps)))
        if action_steps else None,
    )
    return report
