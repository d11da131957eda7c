"""TridentHead: TriDet-style boundary regression as a relative distribution over neighbouring bins.

Instead of regressing a distance directly, three branches (the "trident") share one conv
stack design (``heads._ConvStack``):

* a start branch scores every step as a start boundary: ``s[t]`` (B, T_l);
* an end branch scores every step as an end boundary: ``e[t]``;
* a centre branch gives each point i relative logits ``c_s[i, b]``, ``c_e[i, b]`` for
  ``b = 0 .. num_bins``.

Point i's start distance is the expectation ``sum_b b * softmax_b(s[i - b] + c_s[i, b])``
(bins outside the video take -inf), its end distance likewise over ``e[i + b]``; both are
multiplied by a learned per-level scale (init 1); the centre logits start at ``-b/2``
(short distances first). Outputs are (B, T_l, 2) non-negative
distances in strides, the ``RegressionHead`` interface, so the DIoU loss, the assigner and
post-processing are unchanged. Distances reach at most ``num_bins * scale_l`` strides.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.heads import _ConvStack
from tad.detectors.registry import MODELS


@MODELS.register_module()
class TridentHead(nn.Module):
    """levels: list of (B, T_l, D) -> list of (B, T_l, 2) (start, end) distances in strides.

    Args:
        embed_dim: input width D.
        num_levels: pyramid levels (one learned scale each).
        num_bins: bins 0..num_bins strides on each side, default 16 (TriDet's THUMOS value).
        head_dim: width of the conv stacks (None: embed_dim).
        num_layers: conv layers per branch including the output conv, default 3.
        kernel_size: temporal kernel of the conv stacks, default 3.
        with_ln: LayerNorm in the conv stacks, default True.
    """

    def __init__(self, embed_dim: int, num_levels: int, num_bins: int = 16, head_dim: int | None = None,
                 num_layers: int = 3, kernel_size: int = 3, with_ln: bool = True):
        super().__init__()
        if num_bins < 1:
            raise ValueError(f"num_bins must be >= 1, got {num_bins}")
        head_dim = head_dim or embed_dim
        self.num_bins = num_bins
        self.boundary = _ConvStack(embed_dim, head_dim, 2, num_layers, kernel_size, with_ln)  # start, end
        self.centre = _ConvStack(embed_dim, head_dim, 2 * (num_bins + 1), num_layers, kernel_size, with_ln)
        self.scales = nn.Parameter(torch.ones(num_levels))
        # start near short distances (bin weights ~ exp(-b/2): expectation ~1.5 strides), as the
        # regression head starts near one stride, instead of the uniform mean num_bins / 2
        with torch.no_grad():
            self.centre.out.bias.copy_((-0.5 * torch.arange(num_bins + 1.0)).repeat(2))
        self.register_buffer("bins", torch.arange(num_bins + 1, dtype=torch.float32), persistent=False)

    def _expect(self, boundary: torch.Tensor, centre: torch.Tensor, mask: torch.Tensor, forward: bool) -> torch.Tensor:
        """boundary (B, T), centre (B, T, nb+1), mask (B, T) -> (B, T) expected distance in bins."""
        nb = self.num_bins
        score = boundary.float().masked_fill(~mask, float("-inf"))
        pad = (0, nb) if forward else (nb, 0)
        windows = F.pad(score, pad, value=float("-inf")).unfold(1, nb + 1, 1)  # (B, T, nb+1)
        if not forward:
            windows = windows.flip(-1)  # index b -> step i - b
        logits = windows + centre.float()
        # bin 0 (the point itself) is always finite on valid steps; padded steps are zeroed below
        logits = torch.where(torch.isfinite(logits), logits, torch.full_like(logits, -1e4))
        return torch.softmax(logits, dim=-1) @ self.bins

    def forward(self, levels: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = []
        for i, (x, m) in enumerate(zip(levels, masks)):
            b = self.boundary(x, m)  # (B, T_l, 2)
            c = self.centre(x, m).unflatten(-1, (2, self.num_bins + 1))  # (B, T_l, 2, nb+1)
            start = self._expect(b[..., 0], c[:, :, 0], m, forward=False)
            end = self._expect(b[..., 1], c[:, :, 1], m, forward=True)
            dist = torch.stack([start, end], dim=-1) * self.scales[i].abs()  # (B, T_l, 2) strides
            outs.append(dist * m[:, :, None].to(dist.dtype))
        return outs
