"""Pre-LN transformer blocks and masked 1D conv helpers.

Tokens are laid out time-major: (B, T, C) for plain sequences, (B, T, S, C) when each
step carries S = g*g spatial tokens. Masks are (B, T) bool, True on valid steps; every
block zeroes padded steps on output so padding never leaks into valid ones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.registry import MODELS


def time_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Apply a Conv1d along time to (B, T, C) or (B, T, S, C) tokens (stride 1, same length)."""
    if x.dim() == 3:
        return conv(x.transpose(1, 2)).transpose(1, 2)
    b, t, s, c = x.shape
    y = conv(x.permute(0, 2, 3, 1).reshape(b * s, c, t))  # (B*S, C', T)
    return y.reshape(b, s, -1, t).permute(0, 3, 1, 2)


def expand_mask(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, T) bool -> broadcastable float mask for x of shape (B, T, C) or (B, T, S, C)."""
    m = mask.to(x.dtype)
    return m[:, :, None] if x.dim() == 3 else m[:, :, None, None]


class DropPath(nn.Module):
    """Stochastic depth on the residual branch (per sample)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)


@MODELS.register_module()
class MLP(nn.Module):
    """Two-layer feed-forward network with GELU."""

    def __init__(self, embed_dim: int, hidden_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        hidden_dim = hidden_dim or 4 * embed_dim
        self.fc1 = nn.Linear(embed_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, embed_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


@MODELS.register_module()
class TransformerBlock(nn.Module):
    """x + attn(LN(x)), then x + mlp(LN(x)); optional depthwise temporal conv first.

    ``attention`` is a config dict (``type='LocalWindowAttention'`` or ``'GlobalAttention'``);
    ``conv_pe`` adds a masked depthwise conv along time (a cheap positional signal that
    global attention otherwise lacks).
    """

    def __init__(self, embed_dim: int, num_heads: int = 4, attention: dict | None = None,
                 mlp_ratio: float = 4.0, dropout: float = 0.0, drop_path: float = 0.0,
                 conv_pe: bool = False):
        super().__init__()
        attention = dict(attention or dict(type="LocalWindowAttention", window_size=19))
        attention.setdefault("embed_dim", embed_dim)
        attention.setdefault("num_heads", num_heads)
        attention.setdefault("proj_drop", dropout)
        self.conv_pe = nn.Conv1d(embed_dim, embed_dim, 3, padding=1, groups=embed_dim) if conv_pe else None
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = MODELS.build(attention)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, int(embed_dim * mlp_ratio), dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = expand_mask(mask, x)
        if self.conv_pe is not None:
            x = x + time_conv(self.conv_pe, x * m) * m
        x = x + self.drop_path(self.attn(self.norm1(x), mask))
        x = x + self.drop_path(self.mlp(self.norm2(x))) * m
        return x * m
