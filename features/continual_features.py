"""A continual backbone over one video: output frames in order -> the feature of each clip window.

``ContinualFeatureStream(model, clip_len, frame_interval, clip_stride, ...)``: ``push(frames)``
takes the video's next output frames (uint8 (n, h, w, 3), any n >= 1) and returns
``[(i, feature (C,) float32)]`` for every window i whose last frame was among them;
``finish()`` ends the video. ``tad extract`` pushes runs of decoded frames, ``tad stream``
one frame at a time; both get the same features (the backbone's ``forward_steps`` does not
depend on how steps are split into calls; tested to 1e-4).

Windows are those of ``tad.features.clip_sampling``: window i covers output frames
``i * clip_stride + j * frame_interval`` (j < clip_len) and its feature is the backbone's
output after its last frame ``e_i = i * clip_stride + (clip_len - 1) * frame_interval``,
so a store made this way has the clip extractor's feature count and timestamps (window
centres): feature i ends at output frame e_i, i.e. at ``timestamps[i]`` plus half a
window (the ``options`` of the store say clip_len, frame_interval, clip_stride, fps).

A backbone step is one sampled frame: frames ``frame_interval`` apart form one phase
(``k mod frame_interval``), each phase with its own state from a zero-history start at
the first frame of the video. Only the phases that some window uses are computed
(multiples of gcd(clip_stride, frame_interval)): per window, ``clip_stride /
gcd(clip_stride, frame_interval)`` backbone steps instead of the ``clip_len`` frames of a clip.
A video shorter than one window gets one feature, its last frame repeated (as the clip
extractor's padded clip).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["ContinualFeatureStream", "is_continual", "needed_phases"]


def is_continual(model) -> bool:
    """Whether ``model`` computes frame by frame (a ``ContinualBackbone``)."""
    return bool(getattr(model, "continual", False)) and hasattr(model, "forward_steps")


def needed_phases(frame_interval: int, clip_stride: int) -> list[int]:
    """Frame phases (k mod frame_interval) that some window's frames lie on."""
    return sorted({(i * clip_stride) % frame_interval for i in range(frame_interval)})


class ContinualFeatureStream:
    """See the module docstring.

    Args:
        model: a continual backbone (``forward_steps``/``init_state``), in eval mode on ``device``.
        clip_len: steps per window (the sliding mean's length).
        frame_interval: output frames between two steps of a phase.
        clip_stride: output frames between window starts.
        mean: normalisation mean (RGB, [0, 1] scale); default the backbone's.
        std: normalisation std; default the backbone's.
        device: torch device of the model; default CPU.
        autocast_dtype: torch dtype for autocast, or None (float32).
    """

    def __init__(self, model, clip_len: int, frame_interval: int, clip_stride: int, mean=None, std=None,
                 device=None, autocast_dtype=None):
        import torch

        if not is_continual(model):
            raise ValueError(f"{type(model).__name__} is not a continual backbone")
        self.torch = torch
        self.model = model
        self.clip_len, self.frame_interval, self.clip_stride = int(clip_len), int(frame_interval), int(clip_stride)
        self.span = (self.clip_len - 1) * self.frame_interval + 1
        self.mean = model.spec.mean if mean is None else mean
        self.std = model.spec.std if std is None else std
        self.device = device or torch.device("cpu")
        self.autocast_dtype = autocast_dtype
        self.phases = needed_phases(self.frame_interval, self.clip_stride)
        self.states = {p: model.init_state(1, self.clip_len) for p in self.phases}
        self.frames_seen = 0
        self.windows_done = 0
        self.steps = 0  # backbone steps computed
        self._last: np.ndarray | None = None

    def _window_of(self, k: int) -> int | None:
        rel = k - (self.span - 1)
        return rel // self.clip_stride if rel >= 0 and rel % self.clip_stride == 0 else None

    def push(self, frames: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """frames: (n, h, w, 3) uint8, the next output frames. -> [(window index, (C,) float32)]."""
        from tad.features.frame_transforms import normalize_clips

        torch = self.torch
        frames = np.asarray(frames)
        n = len(frames)
        if n == 0:
            return []
        k0 = self.frames_seen
        out: list[tuple[int, np.ndarray]] = []
        with torch.inference_mode():
            for phase in self.phases:
                first = (phase - k0) % self.frame_interval
                picked = list(range(first, n, self.frame_interval))  # positions in `frames`
                if not picked:
                    continue
                x = torch.from_numpy(np.ascontiguousarray(frames[picked]))[None].to(self.device)  # (1, m, h, w, 3)
                x = normalize_clips(x, self.mean, self.std)  # (1, 3, m, h, w)
                with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype or torch.float32,
                                    enabled=self.autocast_dtype is not None):
                    feats = self.model.forward_steps(x, self.states[phase])  # (1, C, m)
                self.steps += len(picked)
                feats = feats[0].float().cpu().numpy()  # (C, m)
                for col, pos in enumerate(picked):
                    window = self._window_of(k0 + pos)
                    if window is not None:
                        out.append((window, feats[:, col].copy()))
        self.frames_seen += n
        self._last = frames[-1]
        out.sort(key=lambda item: item[0])
        self.windows_done += len(out)
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """End of the video: a video shorter than one window gets its one (padded) feature."""
        if self.windows_done or self._last is None:
            return []
        pad = self.span - self.frames_seen
        return self.push(np.repeat(self._last[None], pad, axis=0))

    @property
    def steps_per_window(self) -> float:
        """Backbone steps per window once warm: clip_stride / gcd(clip_stride, frame_interval)."""
        return self.clip_stride / math.gcd(self.clip_stride, self.frame_interval)
