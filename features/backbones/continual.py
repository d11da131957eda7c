"""The contract of a continual backbone: frames in, one feature per frame, state carried between calls.

A continual backbone (CoX3D, continual TSM) computes a video frame by frame rather than
clip by clip (Hedegaard & Iosifidis, "Continual 3D Convolutional Neural Networks for
Real-time Processing of Videos", ECCV 2022). It implements

* ``init_state(batch, window)`` -- a fresh state: every ring buffer holds zeros (the
  zero-history start: the frames before the first one count as zeros, as the left
  zero padding of a clip does), every window mean has seen no step yet;
* ``forward_steps(frames, state)`` -- ``frames`` (B, 3, n, H, W), n >= 1 consecutive steps;
  returns (B, C, n): the feature after each step, and advances ``state`` in place.

The feature after step t is the mean over the last ``window`` steps (fewer while fewer
have been seen: steps 0 .. window-2 average the steps so far) of the per-step vectors.
Every temporal operation looks at the current and past steps only (no padding of the
future), so ``forward_steps`` gives the same numbers whatever way the steps are split
into calls: one call over the whole sequence (offline extraction) equals n calls of one
step (``tad stream``), to float rounding. ``window_mean`` is the shared sliding mean.

``forward(clips)`` (the clip API every backbone has) runs a clip from a fresh state and
returns the feature after its last step. ``tad.features.continual_features`` schedules
the steps of a video (which frames, which windows) for extraction and streaming.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones.base import Backbone

__all__ = ["ContinualBackbone", "WindowMean", "window_mean", "causal_temporal_conv"]


class WindowMean:
    """State of a sliding mean over the last ``window`` steps: the previous ``window - 1``
    step vectors (zeros before the first step) and how many steps were seen.

    Args:
        window: steps averaged (>= 1).
    """

    def __init__(self, window: int):
        self.window = int(window)
        self.history: torch.Tensor | None = None  # (B, C, window - 1)
        self.seen = 0


def window_mean(values: torch.Tensor, state: WindowMean) -> torch.Tensor:
    """(B, C, n) per-step vectors -> (B, C, n) mean over each step's last ``window`` steps."""
    b, c, n = values.shape
    w = state.window
    if w == 1:
        state.seen += n
        return values
    if state.history is None:
        state.history = values.new_zeros(b, c, w - 1)
    joined = torch.cat([state.history, values], dim=2)  # (B, C, w - 1 + n)
    sums = F.avg_pool1d(joined, w, stride=1) * w  # (B, C, n): each window summed on its own
    counts = torch.arange(state.seen + 1, state.seen + n + 1, device=values.device).clamp(max=w)
    state.history = joined[:, :, -(w - 1):].clone()
    state.seen += n
    return sums / counts.to(values.dtype)


def causal_temporal_conv(conv: nn.Conv3d, x: torch.Tensor, history: torch.Tensor | None,
                         weight: torch.Tensor | None = None, bias: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """A t x k x k conv whose output at step t sees input steps t-(t_k-1) .. t (left zero history).

    x: (B, C, n, H, W); history: (B, C, t_k - 1, H, W) or None (zeros). The conv keeps its
    spatial padding and stride; its temporal padding is not applied. ``weight``/``bias``
    replace the conv's (BN folded in). Returns (output (B, C_out, n, H', W'), new history).
    """
    k = conv.kernel_size[0]
    if history is None:
        history = x.new_zeros(x.shape[0], x.shape[1], k - 1, *x.shape[3:])
    joined = torch.cat([history, x], dim=2) if k > 1 else x  # (B, C, k - 1 + n, H, W)
    w = conv.weight if weight is None else weight
    out = F.conv3d(joined, w, conv.bias if weight is None else bias, (1,) + tuple(conv.stride[1:]),
                   (0,) + tuple(conv.padding[1:]), conv.dilation, conv.groups)
    return out, joined[:, :, joined.shape[2] - (k - 1):].clone()


class ContinualBackbone(Backbone):
    """Base class of the continual backbones; see the module docstring."""

    continual = True

    def init_state(self, batch: int, window: int):
        raise NotImplementedError

    def forward_steps(self, frames: torch.Tensor, state) -> torch.Tensor:
        """frames (B, 3, n, H, W) -> (B, C, n), advancing ``state``."""
        raise NotImplementedError

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, C): the feature after the clip's last frame, from a fresh state."""
        if spatial_grid is not None:
            raise ValueError("a continual backbone gives one vector per step (no spatial grid)")
        state = self.init_state(clips.shape[0], clips.shape[2])
        return self.forward_steps(clips, state)[:, :, -1]
