"""SGPMixer: a TriDet-style Scalable-Granularity Perception layer, a drop-in for attention.

Takes the place of self-attention inside ``TransformerBlock`` (``attention=dict(type='SGPMixer')``)
and mixes time with convolutions only, at two granularities:

* instant level: ``phi(x) * fc(x)`` with ``phi = relu(fc(mean over the video's valid steps))``,
  a per-video, per-channel gate that sharpens how much each step differs from the video;
* window level: ``psi(x) * (dwconv_w(x) + dwconv_kw(x))`` with ``psi = dwconv_w(x)``: depthwise
  temporal convs of ``kernel_size`` and ``round(k * kernel_size)`` (odd) steps.

Input x: (B, T, C) or (B, T, S, C); mask (B, T) bool. Output has the shape of x, padded steps zeroed.
Cost is O(T * C * kernel): no score matrix at all.
"""
from __future__ import annotations

import torch
from torch import nn

from tad.detectors.registry import MODELS
from tad.detectors.transformer_blocks import expand_mask, time_conv


@MODELS.register_module()
class SGPMixer(nn.Module):
    """Scalable-granularity temporal mixing (see the module docstring).

    Args:
        embed_dim: channels C.
        kernel_size: the short depthwise kernel w (odd), default 3.
        k: the long kernel is ``k * w`` steps (rounded up to odd), default 1.5 (TriDet's THUMOS value).
        proj_drop: dropout on the output.
        num_heads: accepted and ignored (the block passes it to every mixer).
        window_size: accepted and ignored (likewise).
    """

    def __init__(self, embed_dim: int, kernel_size: int = 3, k: float = 1.5, proj_drop: float = 0.0,
                 num_heads: int | None = None, window_size: int | None = None):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        long = int(round(k * kernel_size)) | 1
        self.fc = nn.Linear(embed_dim, embed_dim)
        self.global_fc = nn.Linear(embed_dim, embed_dim)
        self.psi = nn.Conv1d(embed_dim, embed_dim, kernel_size, padding=kernel_size // 2, groups=embed_dim)
        self.conv_w = nn.Conv1d(embed_dim, embed_dim, kernel_size, padding=kernel_size // 2, groups=embed_dim)
        self.conv_kw = nn.Conv1d(embed_dim, embed_dim, long, padding=long // 2, groups=embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = expand_mask(mask, x)  # (B, T, 1[, 1])
        x = x * m
        count = m.sum(dim=1, keepdim=True).clamp(min=1)
        video = x.sum(dim=1, keepdim=True) / count  # (B, 1, [S,] C)
        instant = torch.relu(self.global_fc(video)) * self.fc(x)
        window = time_conv(self.psi, x) * (time_conv(self.conv_w, x) + time_conv(self.conv_kw, x))
        return self.drop(self.proj(instant + window)) * m
