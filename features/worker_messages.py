"""Typed records that decoder workers send to the model side (one video per task).

A task's messages arrive in this order: one ``VideoStarted``, any number of
``FrameRun``, then ``VideoEnded``; or a ``VideoFailed`` at any point, after which
nothing more comes for that task. Records are plain dataclasses (picklable between
processes; numpy arrays inside). This module imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["VideoStarted", "FrameRun", "VideoEnded", "VideoFailed", "WorkerMessage"]


@dataclass
class VideoStarted:
    """The video opened: how many clips it has, their centre times, the store attributes."""

    task_id: int
    num_clips: int
    timestamps: np.ndarray  # (T,) float64 seconds, centre of each clip
    attrs: dict = field(default_factory=dict)


@dataclass
class FrameRun:
    """Decoded frames and the clips inside them.

    ``frames`` (n, h, w, 3) uint8 are consecutive output frames; ``rows`` (k, clip_len)
    int64 are the positions inside ``frames`` of clips ``first_clip .. first_clip + k - 1``.
    """

    task_id: int
    first_clip: int
    frames: np.ndarray  # (n, h, w, 3) uint8
    rows: np.ndarray  # (k, clip_len) int64


@dataclass
class VideoEnded:
    task_id: int


@dataclass
class VideoFailed:
    """The video cannot be (fully) decoded; ``reason`` is one line."""

    task_id: int
    reason: str


WorkerMessage = VideoStarted | FrameRun | VideoEnded | VideoFailed
