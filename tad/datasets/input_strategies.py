"""How one video's feature sequence becomes model input: the arithmetic of the three
input strategies a :class:`~tad.datasets.feature_dataset.FeatureDataset` chooses from.

* ``'window'`` (THUMOS-like, long videos): training items are random windows of at most
  ``max_seq_len`` steps that keep actions with at least ``trunc_thresh`` of their length
  inside (:func:`choose_window`, :func:`kept_actions`); test items are whole videos.
* ``'resize'`` (ActivityNet-like, short videos): every video is linearly interpolated to
  ``N`` steps (:func:`resize_features`, PyTorch ``interpolate(mode='linear',
  align_corners=False)``); the resized step ``j`` sits at the original fractional grid
  position ``(j + 0.5) * T / N - 0.5``, and its timestamp is the original timestamps
  interpolated there (:func:`resized_timestamps`). Ground truth enters, and predictions
  leave, through those resized timestamps, so segments come back in seconds.
* ``'sliding'`` (hours-long videos): training as ``'window'``; at inference the whole
  video is one item that carries :func:`sliding_windows` (``[start, stop)`` step ranges of
  ``max_seq_len`` steps overlapping by ``overlap``); the detector predicts every window and
  merges their candidate segments before NMS.

Everything here works in feature steps (grid units); seconds are the dataset's business.
"""
from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

from tad.detectors.timeline import grid_to_seconds

__all__ = ["STRATEGIES", "choose_window", "kept_actions", "resize_features", "resized_timestamps",
           "sliding_windows"]

#: the input strategies a FeatureDataset accepts
STRATEGIES = ("window", "resize", "sliding")


def kept_actions(gt: np.ndarray, start: int, stop: int, trunc_thresh: float) -> np.ndarray:
    """(N,) bool: actions ``gt`` (N, 2) grid units with >= ``trunc_thresh`` of their length in ``[start, stop)``."""
    if len(gt) == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = start - 0.5, stop - 0.5  # a step covers half a step either side
    inter = np.clip(np.minimum(gt[:, 1], hi) - np.maximum(gt[:, 0], lo), 0, None)
    length = np.maximum(gt[:, 1] - gt[:, 0], 1e-6)
    return inter / length >= trunc_thresh


def choose_window(num_steps: int, gt: np.ndarray, max_seq_len: int, trunc_thresh: float = 0.5,
                  crop_ratio: tuple[float, float] | None = None,
                  max_crop_tries: int = 10) -> tuple[int, int, np.ndarray]:
    """A random training window ``[start, stop)`` and the mask of the actions kept in it.

    Videos no longer than ``max_seq_len`` are kept whole, or cropped to a random length in
    ``crop_ratio * T`` when given. Up to ``max_crop_tries`` windows are drawn until one
    holds an action (ActionFormer's truncation)."""
    length = min(num_steps, max_seq_len)
    if crop_ratio is not None and num_steps <= max_seq_len:
        lo = max(1, int(round(crop_ratio[0] * num_steps)))
        hi = max(lo, min(num_steps, int(round(crop_ratio[1] * num_steps))))
        length = random.randint(lo, hi)
    if length >= num_steps:
        return 0, num_steps, np.ones(len(gt), dtype=bool)
    keep = np.zeros(len(gt), dtype=bool)
    start = 0
    for _ in range(max(1, max_crop_tries)):
        start = random.randint(0, num_steps - length)
        keep = kept_actions(gt, start, start + length, trunc_thresh)
        if keep.any() or len(gt) == 0:
            break
    return start, start + length, keep


def resized_timestamps(timestamps: np.ndarray, length: int) -> np.ndarray:
    """Seconds of the ``length`` resized steps of a video whose steps sit at ``timestamps`` (T,).

    Step ``j`` is the original grid position ``(j + 0.5) * T / length - 0.5`` (linear
    interpolation, ``align_corners=False``); beyond the ends the first/last step extends
    the line. Strictly increasing when ``timestamps`` is. (length,) float64."""
    ts = np.asarray(timestamps, dtype=np.float64)
    positions = (np.arange(length, dtype=np.float64) + 0.5) * len(ts) / length - 0.5
    default_step = 1.0
    return np.asarray(grid_to_seconds(positions, ts, default_step=default_step), dtype=np.float64)


def resize_features(feats: np.ndarray, length: int) -> np.ndarray:
    """(T, C[, g, g]) features -> (length, C[, g, g]) by linear interpolation along time."""
    feats = np.asarray(feats)
    if feats.shape[0] == length:
        return feats
    x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))
    t, rest = x.shape[0], x.shape[1:]
    x = x.reshape(t, -1).T[None]  # (1, C*g*g, T)
    y = F.interpolate(x, size=length, mode="linear", align_corners=False)  # (1, C*g*g, length)
    return y[0].T.reshape(length, *rest).numpy()


def sliding_windows(num_steps: int, window: int, overlap: float) -> list[tuple[int, int]]:
    """``[start, stop)`` windows of ``window`` steps covering ``num_steps``, consecutive
    windows sharing ``overlap`` of their length; the last one ends at the video's end.
    One window (the whole video) when it fits."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if num_steps <= window:
        return [(0, num_steps)]
    stride = max(1, int(round(window * (1.0 - overlap))))
    starts = list(range(0, num_steps - window, stride)) + [num_steps - window]
    return [(s, s + window) for s in dict.fromkeys(starts)]
