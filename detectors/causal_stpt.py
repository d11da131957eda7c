"""Causal STPT: the STPT detector with every layer causal, for online detection.

A configuration of ``DenseDetector`` (contract C4: same padding, assignment, losses and
post-processing as STPT; trains with ``tad train`` on the same stores) with causal parts
(``tad.detectors.causal_layers``):

* ``CausalPyramidEncoder``: causal input convs; level 0 and every coarser level use
  causal local attention (keys t - w + 1 .. t); levels below ``num_local_levels`` use
  ``window_size`` keys, coarser ones ``coarse_window`` keys of their own level, i.e. a
  bounded past of ``coarse_window * 2**l`` input steps; causal max-pool between levels.
* ``CausalClassificationHead`` / ``CausalRegressionHead``: causal conv stacks.
* no boundary refinement (it samples features on both sides of a boundary).

For online use the causal configs assign positives near a segment's END
(``PointAssigner(anchor='end')``: a causal point at the centre cannot see the end) with a
signed end distance (``CausalRegressionHead(end_mode='signed')``), and add a per-step
``activity_head`` (which classes are running now) for start events and per-frame scores.

A point at level l, index i sits at input step ``i * 2**l`` and depends only on input
steps <= ``i * 2**l``: running the model on a prefix gives exactly the outputs that the
whole video gives at those points. ``continual()`` returns the step-by-step runner
(``tad.detectors.continual_state.ContinualSTPT``) that computes them from a bounded state.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.causal_layers import CausalConvStack, CausalTransformerBlock, causal_conv, causal_max_pool
from tad.detectors.registry import MODELS
from tad.detectors.dense_detector import DenseDetector, _field, _with


@MODELS.register_module()
class CausalPyramidEncoder(nn.Module):
    """``forward(feats (B, C, T), mask (B, T))`` -> (list of (B, T_l, D), list of (B, T_l) masks).

    Args:
        in_channels: feature channels C.
        embed_dim: token width D.
        num_levels: pyramid levels (strides 1, 2, ..., 2**(num_levels - 1)).
        num_heads: attention heads.
        window_size: keys per query (current step included) at levels < ``num_local_levels``.
        num_local_levels: levels using ``window_size``; the coarser ones use ``coarse_window``.
        coarse_window: keys per query at the coarse levels (their bounded past, in their own steps).
        stem_blocks: blocks at level 0.
        blocks_per_level: blocks after each halving.
        embed_convs: causal conv + LN + ReLU layers of the input projection (>= 1).
        embed_kernel: their temporal kernel.
        mlp_ratio: MLP hidden width / D.
        dropout: dropout in attention projections and MLPs.
        drop_path: stochastic depth.
        conv_pe: causal depthwise conv before each attention.
        input_dropout: dropout on the input features.
        spatial_grid: must be None (kept so configs built for STPT pass it through).
    """

    def __init__(self, in_channels: int, embed_dim: int = 512, num_levels: int = 6, num_heads: int = 4,
                 window_size: int = 19, num_local_levels: int = 3, coarse_window: int = 32,
                 stem_blocks: int = 2, blocks_per_level: int = 1, embed_convs: int = 2, embed_kernel: int = 3,
                 mlp_ratio: float = 4.0, dropout: float = 0.0, drop_path: float = 0.1, conv_pe: bool = True,
                 input_dropout: float = 0.0, spatial_grid: int | None = None):
        super().__init__()
        if spatial_grid:
            raise ValueError("the causal encoder works on (B, C, T) features: set spatial_grid=None")
        if num_levels < 1 or embed_convs < 1:
            raise ValueError("num_levels and embed_convs must be >= 1")
        self.num_levels = num_levels
        self.spatial_grid = None
        self.input_dropout = nn.Dropout(input_dropout)
        self.embed = nn.ModuleList(nn.Conv1d(in_channels if i == 0 else embed_dim, embed_dim, embed_kernel)
                                   for i in range(embed_convs))
        self.embed_norms = nn.ModuleList(nn.LayerNorm(embed_dim) for _ in range(embed_convs))
        self.windows = [window_size if level < num_local_levels else coarse_window for level in range(num_levels)]
        self.levels = nn.ModuleList(
            nn.ModuleList(CausalTransformerBlock(embed_dim, num_heads, self.windows[level], mlp_ratio, dropout,
                                                 drop_path, conv_pe)
                          for _ in range(stem_blocks if level == 0 else blocks_per_level))
            for level in range(num_levels))
        self.level_norms = nn.ModuleList(nn.LayerNorm(embed_dim) for _ in range(num_levels))

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if feats.dim() == 5:
            feats = feats.mean(dim=(3, 4))  # a grid given to the causal model: averaged away
        x = self.input_dropout(feats).transpose(1, 2)  # (B, T, C)
        m = mask[:, :, None].to(x.dtype)
        for conv, norm in zip(self.embed, self.embed_norms):
            x = F.relu(norm(causal_conv(conv, x * m))) * m  # (B, T, D)
        outputs, masks = [], []
        for level, blocks in enumerate(self.levels):
            if level > 0:
                x, mask = causal_max_pool(x, mask)  # (B, T_l, D)
            for block in blocks:
                x = block(x, mask)
            outputs.append(self.level_norms[level](x) * mask[:, :, None].to(x.dtype))
            masks.append(mask)
        return outputs, masks


@MODELS.register_module()
class CausalClassificationHead(nn.Module):
    """levels: list of (B, T_l, D) -> list of (B, T_l, num_classes) logits (causal convs).

    Args:
        embed_dim: input width.
        num_classes: classes K.
        head_dim: hidden width (None: embed_dim).
        num_layers: conv layers in all.
        kernel_size: temporal kernel (looks back ``kernel_size - 1`` steps of the level).
        prior_prob: output bias = -log((1 - p) / p).
        with_ln: LayerNorm in the hidden layers.
    """

    def __init__(self, embed_dim: int, num_classes: int, head_dim: int | None = None, num_layers: int = 3,
                 kernel_size: int = 3, prior_prob: float = 0.01, with_ln: bool = True):
        super().__init__()
        self.stack = CausalConvStack(embed_dim, head_dim or embed_dim, num_classes, num_layers, kernel_size, with_ln)
        nn.init.constant_(self.stack.out.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, levels: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.stack(x, m) for x, m in zip(levels, masks)]


@MODELS.register_module()
class CausalRegressionHead(nn.Module):
    """levels: list of (B, T_l, D) -> list of (B, T_l, 2) (start, end) distances in strides, causal convs.

    Args:
        embed_dim: input width.
        num_levels: pyramid levels (one learned scale each).
        head_dim: hidden width (None: embed_dim).
        num_layers: conv layers in all.
        kernel_size: temporal kernel.
        with_ln: LayerNorm in the hidden layers.
        init_distance: output bias (distances start near one stride).
        end_mode: ``'distance'``: both outputs are non-negative distances (the point lies
            inside its segment); ``'signed'``: the outputs are the start distance and the
            segment length (both >= 0), so the end distance ``length - start`` may be
            negative (a point after the end: ``PointAssigner(anchor='end', end_after > 0)``).
    """

    def __init__(self, embed_dim: int, num_levels: int, head_dim: int | None = None, num_layers: int = 3,
                 kernel_size: int = 3, with_ln: bool = True, init_distance: float = 1.0,
                 end_mode: str = "distance"):
        super().__init__()
        if end_mode not in ("distance", "signed"):
            raise ValueError(f"end_mode must be 'distance' or 'signed', got {end_mode!r}")
        self.end_mode = end_mode
        self.stack = CausalConvStack(embed_dim, head_dim or embed_dim, 2, num_layers, kernel_size, with_ln)
        nn.init.constant_(self.stack.out.bias, init_distance)
        self.scales = nn.Parameter(torch.ones(num_levels))

    def decode(self, raw: torch.Tensor, level: int) -> torch.Tensor:
        """raw stack output (..., 2) of ``level`` -> (start, end) distances in strides (..., 2)."""
        out = F.relu(self.scales[level] * raw)
        if self.end_mode == "signed":  # (start, length) -> (start, length - start)
            out = torch.stack([out[..., 0], out[..., 1] - out[..., 0]], dim=-1)
        return out

    def forward(self, levels: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.decode(self.stack(x, m), i) * m[:, :, None].to(x.dtype)
                for i, (x, m) in enumerate(zip(levels, masks))]


@MODELS.register_module()
class CausalSTPTDetector(DenseDetector):
    """``DenseDetector`` with the causal encoder and heads (see the module docstring).

    Args:
        encoder: encoder config; default ``dict(type='CausalPyramidEncoder')`` with its own defaults.
        cls_head: default ``dict(type='CausalClassificationHead')``.
        reg_head: default ``dict(type='CausalRegressionHead')``.
        activity_head: None (default: none), or the config of a causal head on level 0 (e.g.
            ``dict(type='CausalClassificationHead')``) scoring, at every input step, which
            classes are running (per-step target: the step lies inside a segment of that
            class; BCE averaged over valid steps, weighted by ``train_cfg['activity_loss_weight']``,
            default 1.0). Its sigmoid is the per-frame online score and drives ``start``
            events; ``mode='tensor'`` outputs it as ``activity`` (B, T, K) logits.
        refine: must be False (accepted so configs derived from STPT ones build).
        refinement: ignored (no boundary refinement in the causal model).
        **kwargs: every other argument of ``DenseDetector`` (same defaults).
    """

    DEFAULT_TRAIN_CFG = dict(DenseDetector.DEFAULT_TRAIN_CFG, activity_loss_weight=1.0)

    def __init__(self, encoder: dict | None = None, cls_head: dict | None = None, reg_head: dict | None = None,
                 activity_head: dict | None = None, refine: bool = False, refinement: dict | None = None,
                 **kwargs):
        if refine:
            raise ValueError("CausalSTPTDetector has no boundary refinement (it would look past the current step)")
        super().__init__(encoder=_with(encoder, dict(type="CausalPyramidEncoder")),
                         cls_head=_with(cls_head, dict(type="CausalClassificationHead")),
                         reg_head=_with(reg_head, dict(type="CausalRegressionHead")), **kwargs)
        self.refinement = None
        self.activity_head = None
        if activity_head is not None:
            self.activity_head = MODELS.build(_with(activity_head, dict(type="CausalClassificationHead"),
                                                    embed_dim=self.embed_dim, num_classes=self.num_classes))

    def _extra_outputs(self, out: dict) -> dict:
        if self.activity_head is not None:
            level0 = out["point_mask"][:, :out["lengths"][0]]  # (B, T)
            out["activity"] = self.activity_head([out["levels"][0]], [level0])[0].float()  # (B, T, K)
        return out

    def _extra_losses(self, out: dict, targets: dict, norm: torch.Tensor) -> dict:
        if self.activity_head is None:
            return {}
        logits = out["activity"]  # (B, T, K)
        valid = out["point_mask"][:, :logits.shape[1]]  # (B, T)
        steps = torch.arange(logits.shape[1], device=logits.device, dtype=torch.float32)
        labels = torch.zeros_like(logits)
        for i, sample in enumerate(targets["samples"]):
            gt = torch.as_tensor(_field(sample, "gt_segments"), dtype=torch.float32).reshape(-1, 2).to(logits.device)
            cls = torch.as_tensor(_field(sample, "gt_labels"), dtype=torch.long).reshape(-1).to(logits.device)
            inside = (steps[:, None] >= gt[None, :, 0]) & (steps[:, None] <= gt[None, :, 1])  # (T, M)
            one_hot = F.one_hot(cls, self.num_classes).float()  # (M, K)
            labels[i] = (inside.float() @ one_hot).clamp(max=1.0)
        bce = F.binary_cross_entropy_with_logits(logits[valid], labels[valid], reduction="sum")
        loss = bce / valid.sum().clamp(min=1)
        return dict(loss_activity=loss * self.train_cfg["activity_loss_weight"])

    def targets(self, out: dict, data_samples: list) -> dict:
        targets = super().targets(out, data_samples)
        targets["samples"] = data_samples
        return targets

    def continual(self):
        """A step-by-step runner sharing this model's weights (``ContinualSTPT``)."""
        from tad.detectors.continual_state import ContinualSTPT

        return ContinualSTPT(self)
