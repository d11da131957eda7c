"""TSM's online shift as a continual backbone: the shift buffer carried from frame to frame.

Registered as ``tsm_mobilenetv2_continual`` (the online demo's MobileNetV2,
``tsm_mobilenetv2_online``'s weights and keys) and ``tsm_r50_continual`` (``tsm_r50``'s
weights and keys, with the online shift: the Kinetics weights were trained with the
bidirectional shift). Each shifted block keeps the first C/8 channels of its input's
previous frame (zeros before the first frame) and feeds them in place of the current
frame's, exactly as the online demo's shift buffer does across its whole stream (the
clip-mode backbones restart the buffer at every clip). Each step is one sampled frame;
its vector is the frame's global average and the feature after a step is the mean over
the last ``window`` steps (window = the clip length; fewer during warm-up), the clip
feature of the clip-mode backbone. Receptive field: one more past step per shifted block
(MobileNetV2 10 blocks: 11 steps; R50 16 blocks: 17 steps) plus the window; delay 0.
See :mod:`tad.features.backbones.continual` for the contract. The continual-inference package
has no temporal-shift module; the buffer is ``continual_shift`` here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from tad.features.backbones._layers import conv_bn
from tad.features.backbones.base import BackboneCard
from tad.features.backbones.continual import ContinualBackbone, WindowMean, window_mean
from tad.features.backbones.tsm import (SHIFT_DIV, InvertedResidual, TSMMobileNetV2Online, TSMResNet50,
                                        _frames_first)
from tad.features.registry import BACKBONES

__all__ = ["ContinualTSMMobileNetV2", "ContinualTSMResNet50", "TSMState", "continual_shift"]


@dataclass
class TSMState:
    """Previous frame's shifted channels per block (name -> (B, C/8, H, W)) and the window mean."""

    pool: WindowMean
    shifts: dict = field(default_factory=dict)


def continual_shift(x: torch.Tensor, steps: int, previous: torch.Tensor | None, fold_div: int = SHIFT_DIV
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Online shift of (B*n, C, H, W) frame-major steps: channels [0, C/8) from the step before
    (``previous`` (B, C/8, H, W) for the first, zeros when None). Returns (shifted, new previous)."""
    nt, c, h, w = x.shape
    fold = c // fold_div
    seq = x.view(nt // steps, steps, c, h, w)  # (B, n, C, H, W)
    if previous is None:
        previous = x.new_zeros(seq.shape[0], fold, h, w)
    moved = torch.cat([previous[:, None], seq[:, :-1, :fold]], dim=1)  # (B, n, C/8, H, W)
    out = torch.cat([moved, seq[:, :, fold:]], dim=2).view(nt, c, h, w)
    return out, seq[:, -1, :fold].clone()


def _per_step(x: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
    return x.mean(dim=(2, 3)).view(batch, steps, -1).transpose(1, 2)  # (B, C, n)


@BACKBONES.register_module(name="tsm_mobilenetv2_continual")
class ContinualTSMMobileNetV2(ContinualBackbone, TSMMobileNetV2Online):
    """Continual online-TSM MobileNetV2: frames (B, 3, n, H, W) -> (B, 1280, n). Args as
    :class:`~tad.features.backbones.tsm.TSMMobileNetV2Online`."""

    registry_name = "tsm_mobilenetv2_continual"
    card = BackboneCard(
        paper=TSMMobileNetV2Online.card.paper, input="1 frame per step, every 2 @ 224^2; feature = mean of the last 8 steps",
        norm=TSMMobileNetV2Online.card.norm, feature_dim=1280, gflops=None,
        checkpoints=TSMMobileNetV2Online.card.checkpoints, source=TSMMobileNetV2Online.card.source,
        continual=("continual mode (shift buffer carried frame to frame): receptive field 11 steps + "
                   "8-step window, delay 0",),
    )

    def __init__(self, crop: int = 224, short_side: int = 256, clip_len: int = 8, frame_interval: int = 2,
                 init_seed: int = 0):
        TSMMobileNetV2Online.__init__(self, crop=crop, short_side=short_side, clip_len=clip_len,
                                      frame_interval=frame_interval, init_seed=init_seed)
        self.spec = type(self.spec)(**{**self.spec.to_dict(), "extra": dict(self.spec.extra, continual="tsm_shift",
                                                                           delay_steps=0)})

    def init_state(self, batch: int, window: int) -> TSMState:
        return TSMState(WindowMean(window))

    def forward_steps(self, frames: torch.Tensor, state: TSMState) -> torch.Tensor:
        batch, steps = frames.shape[0], frames.shape[2]
        x = _frames_first(frames)  # (B*n, 3, H, W)
        for index, layer in enumerate(self.features):
            if isinstance(layer, InvertedResidual):
                shifted = x
                if layer.shift:
                    shifted, state.shifts[index] = continual_shift(x, steps, state.shifts.get(index))
                x = layer(x, steps, shifted=shifted)
            else:
                x = F.relu6(conv_bn(layer[0], layer[1], x))  # (B*n, C, H', W')
        return window_mean(_per_step(x, batch, steps), state.pool)  # (B, 1280, n)


@BACKBONES.register_module(name="tsm_r50_continual")
class ContinualTSMResNet50(ContinualBackbone, TSMResNet50):
    """Continual online-shift TSM-R50: frames (B, 3, n, H, W) -> (B, 2048, n).

    Args:
        crop: centre crop (default 224).
        short_side: short side before cropping (default 256).
        clip_len: steps in the feature's window (default 8).
        frame_interval: output frames between steps (default 8).
        init_seed: seed of the random init used without a checkpoint.
    """

    registry_name = "tsm_r50_continual"
    card = BackboneCard(
        paper=TSMResNet50.card.paper, input="1 frame per step, every 8 @ 224^2; feature = mean of the last 8 steps",
        norm=TSMResNet50.card.norm, feature_dim=2048, gflops=None, checkpoints=TSMResNet50.card.checkpoints,
        source=TSMResNet50.card.source,
        continual=("continual mode (online shift buffer carried frame to frame; weights trained with the "
                   "bidirectional shift): receptive field 17 steps + 8-step window, delay 0",),
    )

    def __init__(self, crop: int = 224, short_side: int = 256, clip_len: int = 8, frame_interval: int = 8,
                 init_seed: int = 0):
        TSMResNet50.__init__(self, online=True, crop=crop, short_side=short_side, clip_len=clip_len,
                             frame_interval=frame_interval, init_seed=init_seed)
        self.spec = type(self.spec)(**{**self.spec.to_dict(), "extra": dict(self.spec.extra, continual="tsm_shift",
                                                                           delay_steps=0)})

    def init_state(self, batch: int, window: int) -> TSMState:
        return TSMState(WindowMean(window))

    def forward_steps(self, frames: torch.Tensor, state: TSMState) -> torch.Tensor:
        batch, steps = frames.shape[0], frames.shape[2]
        x = F.relu(conv_bn(self.conv1, self.bn1, _frames_first(frames)))  # (B*n, 64, H/2, W/2)
        x = F.max_pool2d(x, 3, stride=2, padding=1)  # (B*n, 64, H/4, W/4)
        for stage in range(1, 5):
            for i, block in enumerate(getattr(self, f"layer{stage}")):
                name = f"layer{stage}.{i}"
                shifted, state.shifts[name] = continual_shift(x, steps, state.shifts.get(name))
                x = block(x, steps, True, shifted=shifted)  # (B*n, C_s, H', W')
        return window_mean(_per_step(x, batch, steps), state.pool)  # (B, 2048, n)
