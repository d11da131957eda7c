"""STPT-style boundary refinement.

The coarse heads place a segment's start and end from a point of some pyramid level,
whose receptive field at stride 8..32 is too blurred for a sharp boundary. Refinement
samples the finest (level-0) features around the coarse start and end (linear
interpolation along time at ``boundary - stride*o`` for ``o`` in ``sample_offsets``),
joins them with the point's own feature and predicts a correction for each boundary, in
units of the point's stride: ``start' = start + d_start * stride``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.registry import MODELS


def sample_linear(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Linearly interpolate (B, T, D) features at fractional positions (B, N) -> (B, N, D).

    Positions outside [0, T-1] take the edge value.
    """
    b, t, d = features.shape
    pos = positions.float().clamp(0, t - 1)
    left = pos.floor().long().clamp(max=t - 1)
    right = (left + 1).clamp(max=t - 1)
    w = (pos - left.float()).unsqueeze(-1).to(features.dtype)  # (B, N, 1)
    gather = lambda idx: torch.gather(features, 1, idx.unsqueeze(-1).expand(-1, -1, d))  # noqa: E731
    return gather(left) * (1 - w) + gather(right) * w


@MODELS.register_module()
class BoundaryRefinement(nn.Module):
    """forward(level0 (B, T0, D), point_feats (B, N, D), starts, ends (B, N) grid, strides (N,)) -> (B, N, 2)."""

    def __init__(self, embed_dim: int, hidden_dim: int = 128,
                 sample_offsets: Sequence[float] = (-0.5, 0.0, 0.5)):
        super().__init__()
        self.sample_offsets = tuple(float(o) for o in sample_offsets)
        self.reduce = nn.Linear(embed_dim, hidden_dim)
        self.point_proj = nn.Linear(embed_dim, hidden_dim)
        n = len(self.sample_offsets)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_dim * (2 * n + 1), hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, 2))
        nn.init.zeros_(self.mlp[-1].weight)  # start as the identity correction
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, level0: torch.Tensor, point_feats: torch.Tensor, starts: torch.Tensor,
                ends: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
        fine = self.reduce(level0)  # (B, T0, h)
        stride = strides.to(starts.dtype)[None]  # (1, N)
        samples = []
        for boundary in (starts, ends):
            for o in self.sample_offsets:
                samples.append(sample_linear(fine, boundary + o * stride))  # (B, N, h)
        samples.append(self.point_proj(point_feats))
        return self.mlp(F.layer_norm(torch.cat(samples, dim=-1), (samples[0].shape[-1] * len(samples),)))
