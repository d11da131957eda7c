"""Causal building blocks of the causal STPT: the output at step t never depends on steps > t.

Tokens are (B, T, C), masks (B, T) bool (True on valid steps; padding only at the end,
as the collate function makes it). Every layer here has a step-by-step twin in
``tad.detectors.continual_state`` that gives the same numbers from a bounded state:

* ``causal_conv`` -- Conv1d along time, zero-padded by ``k - 1`` steps on the left only;
* ``CausalLocalAttention`` -- each query at t attends to the valid keys t - w + 1 .. t
  (``window_size`` = w keys, itself included), computed in blocks of w queries against
  the 2w keys that can reach them (memory O(T * w));
* ``causal_max_pool`` -- halves time: coarse step i = max of fine steps 2i - 2, 2i - 1, 2i
  (so coarse step i exists as soon as fine step 2i does);
* ``CausalTransformerBlock`` -- x + dwconv_causal(x), x + attn(LN(x)), x + mlp(LN(x));
* ``CausalConvStack`` -- the heads' masked conv + LN + ReLU stack, causal.

Spatial token grids are not supported (the causal model works on (B, C, T) features).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.registry import MODELS
from tad.detectors.transformer_blocks import MLP, DropPath
from tad.detectors.windowed_attention import LocalWindowAttention

__all__ = ["causal_conv", "causal_band_mask", "causal_window_attention", "CausalLocalAttention", "causal_max_pool",
           "CausalTransformerBlock", "CausalConvStack"]


def causal_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B, T, C'): ``conv`` (built with padding=0) over x left-padded with k - 1 zeros."""
    k = conv.kernel_size[0]
    y = F.pad(x.transpose(1, 2), (k - 1, 0))  # (B, C, T + k - 1)
    return conv(y).transpose(1, 2)


def causal_band_mask(window_size: int, device=None) -> torch.Tensor:
    """(w, 2w) bool: query i of a block sees key j of its span (which starts w steps before the
    block) when 1 <= j - i <= w, i.e. key time in [t - w + 1, t]."""
    w = window_size
    q = torch.arange(w, device=device)[:, None]
    k = torch.arange(2 * w, device=device)[None, :]
    diff = k - q
    return (diff >= 1) & (diff <= w)


def causal_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                            window_size: int, dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """q, k, v (B, H, T, d); mask (B, T) -> (B, H, T, d). Queries with no valid key get zeros."""
    b, h, t, d = q.shape
    w = window_size
    nb = -(-t // w)
    pad = nb * w - t
    qb = F.pad(q, (0, 0, 0, pad)).reshape(b, h, nb, w, d)  # (B, H, nb, w, d)
    kb = F.pad(k, (0, 0, w, pad)).unfold(2, 2 * w, w).transpose(-1, -2)  # (B, H, nb, 2w, d)
    vb = F.pad(v, (0, 0, w, pad)).unfold(2, 2 * w, w).transpose(-1, -2)
    key_valid = F.pad(mask, (w, pad), value=False).unfold(1, 2 * w, w)  # (B, nb, 2w)
    allowed = causal_band_mask(w, q.device)[None, None] & key_valid[:, :, None, :]  # (B, nb, w, 2w)
    scores = torch.matmul(qb, kb.transpose(-1, -2)) * (d ** -0.5)  # (B, H, nb, w, 2w)
    scores = scores.float().masked_fill(~allowed[:, None], float("-inf"))
    attn = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0).to(v.dtype)
    if dropout_p > 0 and training:
        attn = F.dropout(attn, p=dropout_p)
    out = torch.matmul(attn, vb)  # (B, H, nb, w, d)
    return out.reshape(b, h, nb * w, d)[:, :, :t]


@MODELS.register_module()
class CausalLocalAttention(LocalWindowAttention):
    """Multi-head attention of each step over the last ``window_size`` valid steps (itself included).

    Args:
        embed_dim: token width C.
        num_heads: attention heads (C must divide by it).
        window_size: keys per query, w (the current step and the w - 1 before it).
        attn_drop: dropout on attention weights (training only).
        proj_drop: dropout after the output projection.

    Parameters and their checks are ``LocalWindowAttention``'s; only the attention pattern differs.
    """

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) -> q, k, v each (B, H, T, d)."""
        b, t, c = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, d) each
        return q, k, v

    def merge(self, out: torch.Tensor) -> torch.Tensor:
        """(B, H, T, d) -> (B, T, C) through the output projection."""
        b, h, t, d = out.shape
        return self.proj_drop(self.proj(out.permute(0, 2, 1, 3).reshape(b, t, h * d)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(x)
        out = causal_window_attention(q, k, v, mask, self.window_size, self.attn_drop, self.training)
        return self.merge(out) * mask[:, :, None].to(x.dtype)


def causal_max_pool(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, C), (B, T) -> (B, ceil(T/2), C), (B, ceil(T/2)): y_i = max(x_{2i-2}, x_{2i-1}, x_{2i}) over valid steps."""
    out_mask = mask[:, ::2]
    x = x.masked_fill(~mask[:, :, None], float("-inf"))
    y = F.max_pool1d(F.pad(x.transpose(1, 2), (2, 0), value=float("-inf")), 3, 2)  # (B, C, T')
    y = y.transpose(1, 2)
    return y.masked_fill(~out_mask[:, :, None], 0.0), out_mask


class CausalTransformerBlock(nn.Module):
    """Pre-LN block with a causal depthwise conv (k=3) as positional signal.

    Args:
        embed_dim: token width.
        num_heads: attention heads.
        window_size: keys per query of the causal local attention.
        mlp_ratio: MLP hidden width / embed_dim.
        dropout: dropout in the attention projection and the MLP.
        drop_path: stochastic depth on the residual branches.
        conv_pe: add the causal depthwise conv before attention.
    """

    def __init__(self, embed_dim: int, num_heads: int = 4, window_size: int = 19, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, drop_path: float = 0.0, conv_pe: bool = True):
        super().__init__()
        self.conv_pe = nn.Conv1d(embed_dim, embed_dim, 3, groups=embed_dim) if conv_pe else None
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = CausalLocalAttention(embed_dim, num_heads, window_size, proj_drop=dropout)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, int(embed_dim * mlp_ratio), dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, :, None].to(x.dtype)
        if self.conv_pe is not None:
            x = x + causal_conv(self.conv_pe, x * m) * m
        x = x + self.drop_path(self.attn(self.norm1(x), mask))
        x = x + self.drop_path(self.mlp(self.norm2(x))) * m
        return x * m


class CausalConvStack(nn.Module):
    """``num_layers - 1`` causal conv + LN + ReLU layers, then a causal output conv: (B, T, D) -> (B, T, out_dim).

    Args:
        embed_dim: input width.
        head_dim: hidden width.
        out_dim: output channels.
        num_layers: conv layers in all (>= 1).
        kernel_size: temporal kernel of every conv (looks ``kernel_size - 1`` steps back).
        with_ln: LayerNorm after each hidden conv.
    """

    def __init__(self, embed_dim: int, head_dim: int, out_dim: int, num_layers: int = 3, kernel_size: int = 3,
                 with_ln: bool = True):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(num_layers - 1):
            self.convs.append(nn.Conv1d(embed_dim if i == 0 else head_dim, head_dim, kernel_size))
            self.norms.append(nn.LayerNorm(head_dim) if with_ln else nn.Identity())
        self.out = nn.Conv1d(head_dim if num_layers > 1 else embed_dim, out_dim, kernel_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, :, None].to(x.dtype)
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(causal_conv(conv, x * m))) * m
        return causal_conv(self.out, x * m) * m
