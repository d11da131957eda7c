"""STPT-style boundary refinement.

The coarse heads place a segment's start and end from a point of some pyramid level,
whose receptive field at stride 8..32 is too blurred for a sharp boundary. Refinement
samples the finest (level-0) features around the coarse start and end (linear
interpolation along time at ``boundary + o * stride`` for ``o`` in ``sample_offsets``),
joins them with the point's own feature and predicts a correction for each boundary, in
units of the point's stride: ``start' = start + d_start * stride``.

Only the points that matter are refined (``forward`` takes a flat list of points): the
positive points in training (the only ones with a target) and the candidate points at
inference. Sampling reads raw level-0 rows and projects only the samples
(``reduce(interp(x)) == interp(reduce(x))``: interpolation weights sum to 1), so the
cost is proportional to the number of refined points, not to the length of the video.
Samples are clamped to each item's valid steps, never reading padding.
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


def sample_linear_points(features: torch.Tensor, batch: torch.Tensor, positions: torch.Tensor,
                         valid_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Interpolate (B, T, D) features at (P,) fractional positions of items ``batch`` (P,) -> (P, D).

    Positions are clamped to [0, valid_lengths[batch] - 1] (default: [0, T-1]), so a
    boundary past the end of a video takes its last valid feature, never padding.
    """
    b, t, d = features.shape
    last = torch.full((b,), float(t - 1), device=features.device) if valid_lengths is None else \
        (valid_lengths.to(features.device).float() - 1).clamp(0, t - 1)
    pos = torch.minimum(positions.float().clamp(min=0), last[batch])  # (P,)
    left = pos.floor().long()
    right = torch.minimum(left + 1, last[batch].long())
    w = (pos - left.float()).unsqueeze(-1).to(features.dtype)  # (P, 1)
    flat = features.reshape(b * t, d)
    return flat[batch * t + left] * (1 - w) + flat[batch * t + right] * w


@MODELS.register_module()
class BoundaryRefinement(nn.Module):
    """forward(level0 (B, T0, D), batch (P,), point_feats (P, D), starts, ends, strides (P,) grid,
    valid_lengths (B,) or None) -> (P, 2) corrections in strides.

    ``detach_features=True`` stops the refinement loss at its inputs: the encoder is then
    trained by the classification and regression losses alone (refinement is a pure
    add-on that cannot disturb them), and backward skips the encoder for it.
    """

    def __init__(self, embed_dim: int, hidden_dim: int = 128,
                 sample_offsets: Sequence[float] = (-0.5, 0.0, 0.5), detach_features: bool = False):
        super().__init__()
        self.detach_features = detach_features
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

    def forward(self, level0: torch.Tensor, batch: torch.Tensor, point_feats: torch.Tensor,
                starts: torch.Tensor, ends: torch.Tensor, strides: torch.Tensor,
                valid_lengths: torch.Tensor | None = None) -> torch.Tensor:
        p = starts.shape[0]
        if p == 0:
            return level0.new_zeros(0, 2)
        if self.detach_features:
            level0, point_feats = level0.detach(), point_feats.detach()
        stride = strides.to(starts.dtype)
        # every sample position at once: (2 * n, P) -> one gather
        positions = torch.stack([boundary + o * stride for boundary in (starts, ends)
                                 for o in self.sample_offsets])
        k = positions.shape[0]
        raw = sample_linear_points(level0, batch.repeat(k), positions.reshape(-1), valid_lengths)  # (k*P, D)
        samples = self.reduce(raw).reshape(k, p, -1).permute(1, 0, 2).reshape(p, -1)  # (P, k*h)
        joined = torch.cat([samples, self.point_proj(point_feats)], dim=-1)  # (P, (k+1)*h)
        return self.mlp(F.layer_norm(joined, (joined.shape[-1],)))
