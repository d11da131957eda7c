"""``tiny3d``: a small 3D CNN for tests, the demo and pipeline benchmarks.

Its weights are drawn from a private generator seeded with ``seed`` at construction,
so ``--random-init`` features are the same in every process and on every run (the
global torch RNG is neither read nor advanced). Three strided 3D convolutions,
64-d output; 8-frame clips every 4 frames at 30 fps, 112 x 112 centre crops.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.registry import BACKBONES


@BACKBONES.register_module(name="tiny3d")
class Tiny3D(Backbone):
    card = BackboneCard(
        paper="none (tad's own test/demo model, seeded random weights)",
        input="8 x 1 @ 112^2",
        norm="RGB [0, 1], mean 0.45 / std 0.225",
        feature_dim=64,
        gflops=0.09,
    )

    def __init__(self, width: int = 16, feature_dim: int = 64, clip_len: int = 8, frame_interval: int = 1,
                 short_side: int = 128, crop: int = 112, seed: int = 0):
        super().__init__()
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=frame_interval, feature_dim=feature_dim,
                                 short_side=short_side, crop=crop, extra=dict(width=width, seed=seed))
        self.stem = nn.Conv3d(3, width, kernel_size=(3, 5, 5), stride=(1, 4, 4), padding=(1, 2, 2))
        self.conv2 = nn.Conv3d(width, 2 * width, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv3d(2 * width, feature_dim, kernel_size=3, stride=(1, 2, 2), padding=1)
        self.act = nn.ReLU(inplace=True)
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        for conv in (self.stem, self.conv2, self.conv3):
            fan_in = conv.in_channels * math.prod(conv.kernel_size)
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in))
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.01)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self.stem(clips))  # (B, w, T, H/4, W/4)
        x = self.act(self.conv2(x))  # (B, 2w, T/2, H/8, W/8)
        x = self.act(self.conv3(x))  # (B, C, T/2, H/16, W/16)
        return [x]
