"""Anchor-free heads shared across pyramid levels.

Both heads run the same conv stack on every level: ``num_layers - 1`` masked conv + LN +
ReLU layers, then an output conv. The classification head emits per-step class logits
(sigmoid; bias initialised to the prior probability 0.01 so early focal loss is sane). The
regression head emits distances to start and end in units of the level's stride,
``relu(scale_l * y)`` with a learned scale per level (output bias starts at ``init_distance``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.registry import MODELS
from tad.detectors.transformer_blocks import time_conv


class _ConvStack(nn.Module):
    def __init__(self, embed_dim: int, head_dim: int, out_dim: int, num_layers: int, kernel_size: int,
                 with_ln: bool):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(num_layers - 1):
            self.convs.append(nn.Conv1d(embed_dim if i == 0 else head_dim, head_dim, kernel_size,
                                        padding=kernel_size // 2))
            self.norms.append(nn.LayerNorm(head_dim) if with_ln else nn.Identity())
        self.out = nn.Conv1d(head_dim if num_layers > 1 else embed_dim, out_dim, kernel_size,
                             padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, :, None].to(x.dtype)  # x: (B, T_l, D)
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(time_conv(conv, x * m))) * m
        return time_conv(self.out, x * m) * m  # (B, T_l, out_dim)


@MODELS.register_module()
class ClassificationHead(nn.Module):
    """levels: list of (B, T_l, D) -> list of (B, T_l, num_classes) logits."""

    def __init__(self, embed_dim: int, num_classes: int, head_dim: int | None = None, num_layers: int = 3,
                 kernel_size: int = 3, prior_prob: float = 0.01, with_ln: bool = True):
        super().__init__()
        head_dim = head_dim or embed_dim
        self.stack = _ConvStack(embed_dim, head_dim, num_classes, num_layers, kernel_size, with_ln)
        nn.init.constant_(self.stack.out.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, levels: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.stack(x, m) for x, m in zip(levels, masks)]


@MODELS.register_module()
class RegressionHead(nn.Module):
    """levels: list of (B, T_l, D) -> list of (B, T_l, 2) non-negative (start, end) distances in strides."""

    def __init__(self, embed_dim: int, num_levels: int, head_dim: int | None = None, num_layers: int = 3,
                 kernel_size: int = 3, with_ln: bool = True, init_distance: float = 1.0):
        super().__init__()
        head_dim = head_dim or embed_dim
        self.stack = _ConvStack(embed_dim, head_dim, 2, num_layers, kernel_size, with_ln)
        # start at about one stride on each side, inside ReLU's live zone (an output stuck
        # below zero for every positive point never receives a gradient)
        nn.init.constant_(self.stack.out.bias, init_distance)
        self.scales = nn.Parameter(torch.ones(num_levels))

    def forward(self, levels: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        return [F.relu(self.scales[i] * self.stack(x, m)) for i, (x, m) in enumerate(zip(levels, masks))]
