"""Spatio-temporal pyramid encoder: input projection, stem, and stages that halve time.

Layout (6 levels for THUMOS, strides 1, 2, 4, ..., 32 in input grid steps):

    feats (B, C, T[, g, g]) -> embed convs (per spatial location) -> (B, T, S, D) tokens
    level 0: ``stem_blocks`` local-attention blocks (over time window x S tokens)
    level l >= 1: masked max-pool /2 in time, ``blocks_per_level`` blocks
    every level: pool space away (learned attention pooling) -> LayerNorm -> (B, T_l, D)

``attention='mixed'`` (STPT): levels < ``num_local_levels`` use local window attention,
coarser levels global attention. ``attention='local'`` (ActionFormer-like): local
everywhere. The token mixer of each kind is a config entry: ``local_mixer`` (default
``LocalWindowAttention``) and ``global_mixer`` (default ``GlobalAttention``); e.g.
``local_mixer=dict(type='SGPMixer')`` (TriDet) or ``dict(type='DynamicAggregation')``
(DyFADet). ``pool_only_from=L`` makes levels >= L pure masked max-pooling, no blocks
(TemporalMaxer's cheap coarse levels). Spatial tokens live in the first ``spatial_levels`` levels only; after that
space is pooled away and the coarse stages run on (B, T_l, D).

The feature of level l at index i sits at input grid position ``i * 2**l``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.registry import MODELS
from tad.detectors.transformer_blocks import TransformerBlock, expand_mask, time_conv


def downsample_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, ceil(T/2)): step i of the coarse level is centred on fine step 2i."""
    return mask[:, ::2]


def masked_max_pool(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Halve time with a k=3, s=2 max-pool that ignores padded steps.

    x: (B, T, C) or (B, T, S, C); mask (B, T). Returns (x', mask') with T' = ceil(T/2).
    """
    out_mask = downsample_mask(mask)
    fill = expand_mask(mask, x) > 0
    x = x.masked_fill(~fill, float("-inf"))
    if x.dim() == 3:
        y = F.max_pool1d(x.transpose(1, 2), 3, 2, 1).transpose(1, 2)  # (B, T', C)
    else:
        b, t, s, c = x.shape
        y = F.max_pool1d(x.permute(0, 2, 3, 1).reshape(b * s, c, t), 3, 2, 1)
        y = y.reshape(b, s, c, -1).permute(0, 3, 1, 2)  # (B, T', S, C)
    y = y.masked_fill(~(expand_mask(out_mask, y) > 0), 0.0)
    return y, out_mask


class SpatialAttentionPool(nn.Module):
    """(B, T, S, D) -> (B, T, D): softmax-weighted sum over the S spatial tokens of each step."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.score = nn.Linear(embed_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(x).float(), dim=2).to(x.dtype)  # (B, T, S, 1)
        return (weights * x).sum(dim=2)


@MODELS.register_module()
class PyramidEncoder(nn.Module):
    """See the module docstring. ``forward(feats, mask)`` -> (list of (B, T_l, D), list of (B, T_l) masks)."""

    def __init__(self, in_channels: int, embed_dim: int = 512, num_levels: int = 6,
                 num_heads: int = 4, window_size: int = 19, attention: str = "mixed",
                 num_local_levels: int = 3, stem_blocks: int = 2, blocks_per_level: int = 1,
                 embed_convs: int = 2, embed_kernel: int = 3, spatial_grid: int | None = None,
                 spatial_levels: int = 1, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 drop_path: float = 0.1, conv_pe: bool = True, input_dropout: float = 0.0,
                 local_mixer: dict | None = None, global_mixer: dict | None = None,
                 pool_only_from: int | None = None):
        """
        Args:
            in_channels: input feature channels C.
            embed_dim: token width D.
            num_levels: pyramid levels (strides 1, 2, ..., 2**(num_levels-1)), default 6.
            num_heads: attention heads, default 4.
            window_size: local attention window in steps of the level, default 19 (t-9 .. t+9).
            attention: 'mixed' (local below ``num_local_levels``, global above), 'local' or 'global'.
            num_local_levels: levels with local mixing under 'mixed', default 3 (strides 1, 2, 4).
            stem_blocks: blocks at level 0, default 2.
            blocks_per_level: blocks after each halving (masked max-pool k=3 s=2), default 1.
            embed_convs: input projection conv(k) + LN + ReLU layers, per spatial location, default 2.
            embed_kernel: their temporal kernel, default 3.
            spatial_grid: g when inputs keep a g x g grid (g*g tokens per step), else None.
            spatial_levels: levels that keep spatial tokens before space is pooled away (learned
                attention pooling), default 1; ignored without a grid.
            mlp_ratio: MLP hidden = mlp_ratio * D, default 4.
            dropout: dropout in mixer projections and MLPs, default 0.
            drop_path: stochastic depth on every residual branch, default 0.1.
            conv_pe: depthwise temporal conv before each mixer (positional signal), default True.
            input_dropout: dropout on the input features, default 0.
            local_mixer: config of the local token mixer, default
                ``dict(type='LocalWindowAttention', window_size=window_size)``.
            global_mixer: config of the global token mixer, default ``dict(type='GlobalAttention')``.
            pool_only_from: levels >= this are max-pooling only (no blocks); None: every level has blocks.
        """
        super().__init__()
        if attention not in ("mixed", "local", "global"):
            raise ValueError(f"attention must be 'mixed', 'local' or 'global', got {attention!r}")
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        self.num_levels = num_levels
        self.spatial_grid = spatial_grid
        self.spatial_levels = spatial_levels if spatial_grid else 0
        self.input_dropout = nn.Dropout(input_dropout)

        self.embed = nn.ModuleList()
        self.embed_norms = nn.ModuleList()
        for i in range(embed_convs):
            self.embed.append(nn.Conv1d(in_channels if i == 0 else embed_dim, embed_dim,
                                        embed_kernel, padding=embed_kernel // 2))
            self.embed_norms.append(nn.LayerNorm(embed_dim))
        if not embed_convs:
            raise ValueError("embed_convs must be >= 1 (the input projection)")
        self.spatial_pos = (nn.Parameter(torch.zeros(spatial_grid * spatial_grid, embed_dim))
                            if spatial_grid else None)

        local_cfg = dict(local_mixer or dict(type="LocalWindowAttention"))
        if local_cfg["type"] == "LocalWindowAttention":
            local_cfg.setdefault("window_size", window_size)
        global_cfg = dict(global_mixer or dict(type="GlobalAttention"))

        def make_block(level: int) -> TransformerBlock:
            local = attention == "local" or (attention == "mixed" and level < num_local_levels)
            attn = dict(local_cfg if local else global_cfg)
            return TransformerBlock(embed_dim, num_heads, attn, mlp_ratio, dropout, drop_path, conv_pe)

        self.levels = nn.ModuleList()
        for level in range(num_levels):
            count = stem_blocks if level == 0 else blocks_per_level
            if pool_only_from is not None and level >= max(1, pool_only_from):
                count = 0  # TemporalMaxer: the coarse level is the max-pool of the finer one
            self.levels.append(nn.ModuleList(make_block(level) for _ in range(count)))
        self.spatial_pools = nn.ModuleList(SpatialAttentionPool(embed_dim) for _ in range(self.spatial_levels))
        self.level_norms = nn.ModuleList(nn.LayerNorm(embed_dim) for _ in range(num_levels))

    def _tokens(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, T, C); (B, C, T, g, g) -> (B, T, g*g, C)."""
        if feats.dim() == 3:
            return feats.transpose(1, 2)
        b, c, t = feats.shape[:3]
        return feats.reshape(b, c, t, -1).permute(0, 2, 3, 1)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        x = self._tokens(self.input_dropout(feats))  # (B, T, C) or (B, T, S, C)
        if x.dim() == 4 and not self.spatial_levels:
            x = x.mean(dim=2)  # a grid given to a model configured without space
        m = expand_mask(mask, x)
        for conv, norm in zip(self.embed, self.embed_norms):
            x = F.relu(norm(time_conv(conv, x * m))) * m
        if x.dim() == 4:
            if x.shape[2] == self.spatial_pos.shape[0]:
                x = x + self.spatial_pos
            elif x.shape[2] != 1:
                raise ValueError(f"inputs carry {x.shape[2]} spatial tokens per step but the model was "
                                 f"configured with spatial_grid={self.spatial_grid}")
            x = x * m

        outputs, masks = [], []
        for level, blocks in enumerate(self.levels):
            if level > 0:
                x, mask = masked_max_pool(x, mask)
            for block in blocks:
                x = block(x, mask)
            if x.dim() == 4:
                pooled = self.spatial_pools[level](x)  # (B, T_l, D)
                if level + 1 >= self.spatial_levels:
                    x = pooled  # space pooled away for the coarser stages
            else:
                pooled = x
            outputs.append(self.level_norms[level](pooled) * mask[:, :, None].to(pooled.dtype))
            masks.append(mask)
        return outputs, masks
