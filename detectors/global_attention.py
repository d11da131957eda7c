"""Global masked self-attention for the coarse pyramid levels.

At stride 8 and beyond a THUMOS-length input (2304 steps) has at most 288 steps, so full
attention there costs little and lets every step see the whole video.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.registry import MODELS


@MODELS.register_module()
class GlobalAttention(nn.Module):
    """Multi-head self-attention over all valid steps (and spatial tokens, if any).

    Input x: (B, T, C) or (B, T, S, C); mask (B, T) bool. Output has the shape of x;
    padded steps are zeroed.
    """

    def __init__(self, embed_dim: int, num_heads: int = 4, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, window_size: int | None = None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(2)
        b, t, s, c = x.shape
        h = self.num_heads
        tokens = x.reshape(b, t * s, c)
        token_mask = mask[:, :, None].expand(b, t, s).reshape(b, t * s)
        q, k, v = self.qkv(tokens).view(b, t * s, 3, h, c // h).permute(2, 0, 3, 1, 4)  # (B, H, N, d) each
        # a row with no valid key would be NaN: let such (fully padded) items see themselves
        any_valid = token_mask.any(dim=1, keepdim=True)
        key_mask = token_mask | ~any_valid
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask[:, None, None, :],
            dropout_p=self.attn_drop if self.training else 0.0)  # (B, H, N, d)
        out = out.transpose(1, 2).reshape(b, t, s, c)
        out = self.proj_drop(self.proj(out)) * mask[:, :, None, None].to(out.dtype)
        return out.squeeze(2) if squeeze else out
