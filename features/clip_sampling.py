"""Clip windows over a (resampled) frame sequence and their centre times.

Clip ``i`` covers frames ``i * clip_stride + j * frame_interval`` for ``j < clip_len``.
Only whole clips are kept: ``T = (N - span) // clip_stride + 1`` with
``span = (clip_len - 1) * frame_interval + 1``. A video shorter than one clip gets
one clip padded by repeating its last frame (``padded=True``), so ``T >= 1``.

A clip covering frames a..b is centred at ``(t[a] + t[b] + duration[b]) / 2``: the
midpoint between the start of its first frame and the end of its last (16-frame clips
every 4 frames at 30 fps: clip i centred at (4 i + 8) / 30 s).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClipWindows", "clip_windows"]


@dataclass
class ClipWindows:
    frame_index: np.ndarray  # (T, clip_len) int64 frame positions, clamped to the video
    padded: bool

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def first(self) -> np.ndarray:  # (T,)
        return self.frame_index[:, 0]

    @property
    def last(self) -> np.ndarray:  # (T,)
        return self.frame_index[:, -1]

    def centres(self, times: np.ndarray, durations: np.ndarray) -> np.ndarray:
        """(T,) float64 centre seconds of each clip."""
        times = np.asarray(times, dtype=np.float64)
        durations = np.asarray(durations, dtype=np.float64)
        return (times[self.first] + times[self.last] + durations[self.last]) / 2.0


def clip_windows(num_frames: int, clip_len: int, frame_interval: int, clip_stride: int) -> ClipWindows:
    """Windows of whole clips over ``num_frames`` frames (one padded clip if too short)."""
    if num_frames < 1:
        raise ValueError("a video needs at least one frame")
    if clip_len < 1 or frame_interval < 1 or clip_stride < 1:
        raise ValueError(f"clip_len, frame_interval, clip_stride must be >= 1, got {clip_len}, {frame_interval}, {clip_stride}")
    span = (clip_len - 1) * frame_interval + 1
    padded = num_frames < span
    count = 1 if padded else (num_frames - span) // clip_stride + 1
    starts = np.arange(count, dtype=np.int64) * clip_stride  # (T,)
    offsets = np.arange(clip_len, dtype=np.int64) * frame_interval  # (clip_len,)
    index = np.minimum(starts[:, None] + offsets[None, :], num_frames - 1)  # (T, clip_len)
    return ClipWindows(index, padded)
