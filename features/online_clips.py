"""Frames arriving one by one -> the clips of ``tad.features.clip_sampling``, as each completes.

``OnlineClipAssembler(clip_len, frame_interval, clip_stride, fps)``: ``push(time, rgb)``
per decoded frame returns the clips completed by it; ``finish()`` the last ones. A clip
is ``OnlineClip(index, frames (clip_len, h, w, 3) uint8, centre seconds)`` and equals
what the offline extractor builds for the same file:

* ``fps=None``/``'native'``: every frame is an output frame; its duration is the gap to
  the next frame, so a frame is released one frame late (the last one keeps the previous
  gap). ``fps=F``: output frame k is the source frame showing at ``t0 + k / F``
  (``resample_timeline``'s rule, decided as soon as a later frame arrives).
* clip i covers output frames ``i * clip_stride + j * frame_interval``; its centre is
  ``(t[first] + t[last] + duration[last]) / 2``; a stream shorter than one clip gives one
  clip padded with its last frame.

With ``keep_frames=True`` the output frames are also kept, in order, until
``take_frames()`` hands them over (a continual backbone consumes every output frame).

Memory: the frames of one clip span. No torch.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["OnlineClip", "OnlineClipAssembler"]


@dataclass
class OnlineClip:
    index: int
    frames: np.ndarray  # (clip_len, h, w, 3) uint8
    centre: float  # seconds


class OnlineClipAssembler:
    """See the module docstring.

    Args:
        clip_len: frames per clip.
        frame_interval: step between a clip's frames (output frames).
        clip_stride: output frames between clip starts.
        fps: output frame rate, or None / 'native' for every frame.
        keep_frames: also keep every output frame for ``take_frames()``.
    """

    def __init__(self, clip_len: int, frame_interval: int, clip_stride: int, fps: float | str | None = None,
                 keep_frames: bool = False):
        self.keep_frames = bool(keep_frames)
        self.output_frames: list[np.ndarray] = []  # (h, w, 3) uint8 output frames not yet taken
        self.clip_len, self.frame_interval, self.clip_stride = int(clip_len), int(frame_interval), int(clip_stride)
        self.span = (self.clip_len - 1) * self.frame_interval + 1
        self.step = None if fps is None or fps == "native" else 1.0 / float(fps)
        self.frames: deque = deque()  # (k, time, duration, rgb) output frames still needed
        self.produced = 0  # output frames so far
        self.next_clip = 0
        self._pending = None  # native: (time, rgb) waiting for its duration
        self._last_gap: float | None = None
        self._t0: float | None = None
        self._prev = None  # resampled: (time, rgb) of the last source frame
        self._last_time: float | None = None

    def push(self, time: float, rgb: np.ndarray) -> list[OnlineClip]:
        clips: list[OnlineClip] = []
        if self.step is None:
            if self._pending is not None:
                gap = time - self._pending[0]
                self._last_gap = gap if gap > 0 else (self._last_gap or 1e-6)
                clips += self._output(self._pending[0], self._last_gap, self._pending[1])
            self._pending = (time, rgb)
            return clips
        if self._t0 is None:
            self._t0 = time
        if self._prev is not None:
            gap = time - self._prev[0]
            if gap > 0:
                self._last_gap = gap
        # output frames whose time has been passed by this frame are shown by the previous one
        eps = min(1e-3, 0.25 * self.step)
        while self._prev is not None and self._t0 + self.produced * self.step + eps < time:
            clips += self._output(self._t0 + self.produced * self.step, self.step, self._prev[1])
        self._prev = (time, rgb)
        return clips

    def finish(self) -> list[OnlineClip]:
        clips: list[OnlineClip] = []
        if self.step is None:
            if self._pending is not None:
                clips += self._output(self._pending[0], self._last_gap or 1.0 / 30, self._pending[1])
                self._pending = None
        elif self._prev is not None:
            end = self._prev[0] + (self._last_gap or self.step)
            eps = min(1e-3, 0.25 * self.step)
            count = max(1, int(np.floor((end - self._t0 - eps) / self.step)) + 1)
            while self.produced < count:
                clips += self._output(self._t0 + self.produced * self.step, self.step, self._prev[1])
            self._prev = None
        if self.next_clip == 0 and self.frames:  # shorter than one clip: one padded clip
            clips.append(self._clip(0, padded=True))
            self.next_clip = 1
            self.frames.clear()
        return clips

    def take_frames(self) -> list[np.ndarray]:
        """The output frames produced since the last call, in order (``keep_frames=True``)."""
        frames, self.output_frames = self.output_frames, []
        return frames

    def _output(self, time: float, duration: float, rgb: np.ndarray) -> list[OnlineClip]:
        self.frames.append((self.produced, time, duration, rgb))
        if self.keep_frames:
            self.output_frames.append(rgb)
        self.produced += 1
        out = []
        while self.next_clip * self.clip_stride + self.span <= self.produced:
            out.append(self._clip(self.next_clip))
            self.next_clip += 1
            first_needed = self.next_clip * self.clip_stride
            while self.frames and self.frames[0][0] < first_needed:
                self.frames.popleft()
        return out

    def _clip(self, index: int, padded: bool = False) -> OnlineClip:
        base = self.frames[0][0]
        last_k = self.frames[-1][0]
        wanted = [min(index * self.clip_stride + j * self.frame_interval, last_k) for j in range(self.clip_len)]
        picked = [self.frames[k - base] for k in wanted]
        first, last = picked[0], picked[-1]
        centre = (first[1] + last[1] + last[2]) / 2.0
        return OnlineClip(index, np.stack([p[3] for p in picked]), float(centre))
