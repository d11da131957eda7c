"""Local window self-attention over time (optionally time x space tokens), computed in blocks.

Every query at time ``t`` attends to the valid keys at times ``t - w//2 .. t + w//2`` (all
spatial tokens of those steps when the input carries space). Time is padded to a multiple
of the block length ``w`` and split into blocks; each query block attends to the keys of
itself and its two neighbour blocks (3w steps), with a band mask cutting that down to the
exact window; the blocks go through the fused
``F.scaled_dot_product_attention``. Intermediate tensors are (B, H, T/w, w*S, 3w*S): memory and compute grow
linearly in T, never as a full T x T score matrix.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.registry import MODELS


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    # (B, T, S, C) -> (B, H, T, S, C/H)
    b, t, s, c = x.shape
    return x.view(b, t, s, num_heads, c // num_heads).permute(0, 3, 1, 2, 4)


def band_mask(window_size: int, device=None) -> torch.Tensor:
    """(w, w + 2*(w//2)) bool: query i of a block may see key j of the block's key span,
    which starts w//2 steps before the block."""
    w, half = window_size, window_size // 2
    q = torch.arange(w, device=device)[:, None]
    k = torch.arange(w + 2 * half, device=device)[None, :] - half
    return (k - q).abs() <= half


def blocked_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             mask: torch.Tensor, window_size: int,
                             dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """Band attention in blocks.

    q, k, v: (B, H, T, S, d); mask: (B, T) bool, True on valid steps.
    Returns (B, H, T, S, d); queries with no valid key in reach get zeros.
    """
    b, h, t, s, d = q.shape
    w, half = window_size, window_size // 2
    span = w + 2 * half  # keys a query block can reach
    num_blocks = -(-t // w)
    pad = num_blocks * w - t
    q = F.pad(q, (0, 0, 0, 0, 0, pad)).reshape(b, h, num_blocks, w * s, d)  # (B, H, nb, w*S, d)
    # keys padded by half a window on each side, then overlapping spans of w + 2*half steps every w
    k = F.pad(k, (0, 0, 0, 0, half, pad + half)).unfold(2, span, w)  # (B, H, nb, S, d, span)
    v = F.pad(v, (0, 0, 0, 0, half, pad + half)).unfold(2, span, w)
    k = k.permute(0, 1, 2, 5, 3, 4).reshape(b, h, num_blocks, span * s, d)  # (B, H, nb, span*S, d)
    v = v.permute(0, 1, 2, 5, 3, 4).reshape(b, h, num_blocks, span * s, d)
    key_valid = F.pad(mask, (half, pad + half), value=False).unfold(1, span, w)  # (B, nb, span)

    allowed = band_mask(w, q.device)[None, None] & key_valid[:, :, None, :]  # (B, nb, w, span)
    allowed = allowed[:, :, :, None, :, None].expand(b, num_blocks, w, s, span, s)
    allowed = allowed.reshape(b, 1, num_blocks, w * s, span * s)

    # rows without any valid key (padded queries) would be NaN: let them see the whole span, zero them after
    has_key = allowed.any(dim=-1, keepdim=True)  # (B, 1, nb, w*S, 1)
    allowed = allowed | ~has_key
    # fused kernel, in the inputs' dtype (no float32 up-cast of the score tensor)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                         dropout_p=dropout_p if training else 0.0)  # (B, H, nb, w*S, d)
    out = out * has_key.to(out.dtype)
    out = out.reshape(b, h, num_blocks * w, s, d)
    return out[:, :, :t]


@MODELS.register_module()
class LocalWindowAttention(nn.Module):
    """Multi-head self-attention restricted to a temporal window of ``window_size`` steps.

    Input x: (B, T, C) or (B, T, S, C) with S spatial tokens per step; mask (B, T) bool.
    Output has the shape of x; padded steps are zeroed.
    """

    def __init__(self, embed_dim: int, num_heads: int = 4, window_size: int = 19,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(2)  # (B, T, 1, C)
        b, t, s, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (_split_heads(y, self.num_heads) for y in (q, k, v))  # (B, H, T, S, d)
        out = blocked_window_attention(q, k, v, mask, self.window_size, self.attn_drop, self.training)
        out = out.permute(0, 2, 3, 1, 4).reshape(b, t, s, c)
        out = self.proj_drop(self.proj(out)) * mask[:, :, None, None].to(out.dtype)
        return out.squeeze(2) if squeeze else out
