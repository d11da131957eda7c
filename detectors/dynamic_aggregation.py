"""DynamicAggregation: DyFADet-style input-dependent temporal aggregation, a drop-in for attention.

Takes the place of self-attention inside ``TransformerBlock``
(``attention=dict(type='DynamicAggregation')``). Each step aggregates its neighbourhood with a
kernel chosen by its own content: ``len(kernel_sizes)`` depthwise temporal convs of growing
reach run in parallel and a per-step, per-group softmax gate (predicted from the step's
feature) mixes them, so a step inside a long action can look far while a step at a boundary
keeps a sharp, short kernel -- DyFADet's point that a fixed kernel blurs boundaries.

Input x: (B, T, C) or (B, T, S, C); mask (B, T) bool. Output has the shape of x, padded steps zeroed.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from tad.detectors.registry import MODELS
from tad.detectors.transformer_blocks import expand_mask, time_conv


@MODELS.register_module()
class DynamicAggregation(nn.Module):
    """Content-gated mixture of depthwise temporal kernels (see the module docstring).

    Args:
        embed_dim: channels C.
        kernel_sizes: odd kernel sizes of the parallel depthwise convs, default (3, 7, 15).
        groups: channel groups with their own gate (C must divide), default 4.
        proj_drop: dropout on the output.
        num_heads: accepted and ignored (the block passes it to every mixer).
        window_size: accepted and ignored (likewise).
    """

    def __init__(self, embed_dim: int, kernel_sizes: Sequence[int] = (3, 7, 15), groups: int = 4,
                 proj_drop: float = 0.0, num_heads: int | None = None, window_size: int | None = None):
        super().__init__()
        if embed_dim % groups:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by groups {groups}")
        if any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd and >= 1, got {tuple(kernel_sizes)}")
        self.groups = groups
        self.num_kernels = len(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, embed_dim, k, padding=k // 2, groups=embed_dim)
                                   for k in kernel_sizes)
        self.gate = nn.Linear(embed_dim, groups * self.num_kernels)
        nn.init.zeros_(self.gate.weight)  # start as the plain average of the kernels
        nn.init.zeros_(self.gate.bias)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = expand_mask(mask, x)
        x = x * m
        c = x.shape[-1]
        branches = torch.stack([time_conv(conv, x) for conv in self.convs], dim=-2)  # (..., K, C)
        gate = torch.softmax(self.gate(x).unflatten(-1, (self.groups, self.num_kernels)), dim=-1)  # (..., G, K)
        branches = branches.unflatten(-1, (self.groups, c // self.groups))  # (..., K, G, C/G)
        mixed = torch.einsum("...gk,...kgc->...gc", gate.to(branches.dtype), branches).flatten(-2)  # (..., C)
        return self.drop(self.proj(mixed)) * m
