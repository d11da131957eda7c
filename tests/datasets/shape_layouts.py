"""Annotation layouts of two dataset shapes, CPU-sized, for the end-to-end tests:

* EPIC-shaped: long videos packed with many short actions, back to back, some
  overlapping their neighbour by a fraction of a second (as EPIC's narrations do);
* multi-label (Multi-THUMOS / Charades-like): long "context" actions of one class with
  shorter actions of other classes inside them, so instances of different classes
  overlap in time.

Subset names follow what ``tad convert-annotations`` writes for the real files
(EPIC: training/validation; Multi-THUMOS: training/testing).
"""
from __future__ import annotations

import numpy as np

from tad.synthetic_features import FEATURE_FPS, Layout, VideoLayout


def epic_like_layout(num_videos: int = 12, num_classes: int = 5, duration_range=(70.0, 100.0),
                     action_length=(1.0, 3.5), test_fraction: float = 1 / 3, seed: int = 0) -> Layout:
    rng = np.random.default_rng([seed, 0xE91C])
    num_test = int(round(num_videos * test_fraction))
    videos = {}
    for i in range(num_videos):
        subset = "validation" if i >= num_videos - num_test else "training"
        vid = f"P{i // 4 + 1:02d}_{i % 4 + 1:02d}"
        duration = round(float(rng.uniform(*duration_range)), 3)
        segs, labels = [], []
        t = float(rng.uniform(0.0, 2.0))
        while True:
            length = float(rng.uniform(*action_length))
            if t + length > duration - 0.5:
                break
            segs.append((t, t + length))
            labels.append(int(rng.integers(num_classes)))
            t += length + float(rng.uniform(-0.3, 1.2))  # dense: small gaps, sometimes a slight overlap
        videos[vid] = VideoLayout(vid, subset, duration, FEATURE_FPS, np.round(np.array(segs), 2),
                                  np.array(labels, dtype=np.int64))
    return Layout([f"verb{k}" for k in range(num_classes)], videos)


def multi_label_layout(num_videos: int = 14, num_short_classes: int = 3, duration_range=(30.0, 45.0),
                       test_fraction: float = 0.4, seed: int = 0) -> Layout:
    """Class 0 ('Game') is a long context; classes 1.. are short actions, most inside a context."""
    rng = np.random.default_rng([seed, 0x3417])
    num_test = int(round(num_videos * test_fraction))
    videos = {}
    for i in range(num_videos):
        subset = "testing" if i >= num_videos - num_test else "training"
        vid = f"video_{subset}_{i:04d}"
        duration = round(float(rng.uniform(*duration_range)), 3)
        segs, labels = [], []
        # one or two contexts of 8-14 s, each holding 2-3 short actions of other classes
        n_ctx = int(rng.integers(1, 3))
        slots = np.linspace(1.0, duration - 1.0, n_ctx + 1)
        for c in range(n_ctx):
            length = float(rng.uniform(8.0, min(14.0, slots[c + 1] - slots[c] - 1.0)))
            start = float(rng.uniform(slots[c], slots[c + 1] - length))
            segs.append((start, start + length))
            labels.append(0)
            n_in = int(rng.integers(2, 4))
            inner = np.linspace(start + 0.3, start + length - 0.3, n_in + 1)
            for k in range(n_in):
                span = inner[k + 1] - inner[k]
                a_len = float(rng.uniform(1.5, max(1.6, min(3.5, span - 0.2))))
                a_start = float(rng.uniform(inner[k], max(inner[k], inner[k + 1] - a_len)))
                segs.append((a_start, a_start + a_len))
                labels.append(int(rng.integers(1, num_short_classes + 1)))
        order = np.argsort([s[0] for s in segs], kind="stable")
        videos[vid] = VideoLayout(vid, subset, duration, FEATURE_FPS, np.round(np.array(segs)[order], 2),
                                  np.array(labels, dtype=np.int64)[order])
    return Layout(["Game"] + [f"Move{k}" for k in range(1, num_short_classes + 1)], videos)


def overlapping_pairs_layout(num_videos: int = 12, num_classes: int = 4, duration_range=(30.0, 45.0),
                             test_fraction: float = 0.4, seed: int = 0) -> Layout:
    """Charades-like: events made of two actions of different classes with similar lengths
    (within 25 %) that overlap by half or more, so each one's centre lies inside the other."""
    rng = np.random.default_rng([seed, 0x9A125])
    num_test = int(round(num_videos * test_fraction))
    videos = {}
    for i in range(num_videos):
        subset = "testing" if i >= num_videos - num_test else "training"
        vid = f"video_{subset}_{i:04d}"
        duration = round(float(rng.uniform(*duration_range)), 3)
        segs, labels = [], []
        t = float(rng.uniform(0.5, 3.0))
        while True:
            first = float(rng.uniform(2.0, 4.0))
            second = first * float(rng.uniform(0.8, 1.25))
            offset = first * float(rng.uniform(0.15, 0.45))
            if t + max(first, offset + second) > duration - 0.5:
                break
            a, b = rng.choice(num_classes, size=2, replace=False)
            segs += [(t, t + first), (t + offset, t + offset + second)]
            labels += [int(a), int(b)]
            t += max(first, offset + second) + float(rng.uniform(1.5, 4.0))
        videos[vid] = VideoLayout(vid, subset, duration, FEATURE_FPS, np.round(np.array(segs), 2),
                                  np.array(labels, dtype=np.int64))
    return Layout([f"Act{k}" for k in range(num_classes)], videos)
