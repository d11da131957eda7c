"""Points of the temporal pyramid and their training targets (all in input grid units).

A point is a row ``(position, range_lo, range_hi, stride)``: level l's step i sits at grid
position ``i * stride_l``. A point is positive for a ground-truth segment when

* it lies in the segment's centre region: within ``center_sample_radius * stride`` of the
  segment centre (clipped to the segment), and
* its largest distance to the segment's boundaries lies in its level's regression range.

When several segments claim a point, the shortest wins (its regression target); every
label of segments with that same length is set (THUMOS repeats segments under two
classes, e.g. CliffDiving and Diving). With ``multi_label=True`` (multi-label sets such as
Multi-THUMOS or Charades, where instances of different classes overlap) the label of every
segment that claims the point is set, whatever its length; the regression target is still
the shortest segment's. Regression targets are distances to start and end divided by the
stride.

``anchor='end'`` (for causal, online detectors, which can only see the past) replaces the
centre region by an end region: a point is positive when it lies after the segment's start
and within ``[end - end_before * stride, end + end_after * stride]``, i.e. in the last part
of the segment or a few strides after its end, where a causal point has seen the whole
action. Its start distance (observed) is large and its end distance small; the end
distance is negative for points after the end (the regression head must allow it, e.g.
``CausalRegressionHead(end_mode='signed')``). The level test uses half the start distance,
``left / 2``: at the end point that is half the segment length, the reach of its centre
point, so a causal and an offline model given the same ranges put a segment on the same
level. (The start distance itself, about the whole length, moves every segment one level
coarser: later, sparser points; on the THUMOS-shaped synthetic set, bench/stream_accuracy.py
at 60 epochs, lr 8e-4, the causal model scored 49.71 avg mAP that way, 60.18 with ``left / 2``;
half the length of the segment, the same for all its points, 53.32.)
``anchor='centre'`` (the default) is the offline rule above.
"""
from __future__ import annotations

from typing import Sequence

import torch

from tad.detectors.registry import MODELS


@MODELS.register_module()
class PointAssigner:
    """Builds points and assigns targets; no parameters, so a plain registered class.

    Args:
        regression_ranges: (lo, hi) input steps per pyramid level.
        center_sample_radius: centre region half-width, in strides (``anchor='centre'``).
        center_sample: False: every point inside the segment (``anchor='centre'``).
        multi_label: set the label of every segment claiming a point.
        anchor: ``'centre'`` (offline) or ``'end'`` (causal; see the module docstring).
        end_before: end region: strides before the segment's end (``anchor='end'``). 0: only
            points that have seen the end (one before it cannot know the action is ending, so
            its label is a guess).
        end_after: end region: strides after the segment's end (``anchor='end'``).
    """

    def __init__(self, regression_ranges: Sequence[Sequence[float]], center_sample_radius: float = 1.5,
                 center_sample: bool = True, multi_label: bool = False, anchor: str = "centre",
                 end_before: float = 0.0, end_after: float = 2.0):
        if anchor not in ("centre", "end"):
            raise ValueError(f"anchor must be 'centre' or 'end', got {anchor!r}")
        if end_before < 0 or end_after < 0:
            raise ValueError("end_before and end_after must be >= 0")
        self.anchor, self.end_before, self.end_after = anchor, float(end_before), float(end_after)
        self.regression_ranges = [tuple(float(v) for v in r) for r in regression_ranges]
        self.center_sample_radius = center_sample_radius
        self.center_sample = center_sample
        self.multi_label = multi_label

    def points(self, level_lengths: Sequence[int], strides: Sequence[int], device=None) -> torch.Tensor:
        """(N, 4) float32 rows (position, range_lo, range_hi, stride), levels concatenated."""
        if len(level_lengths) != len(self.regression_ranges):
            raise ValueError(f"{len(level_lengths)} pyramid levels but {len(self.regression_ranges)} "
                             "regression ranges")
        rows = []
        for length, stride, (lo, hi) in zip(level_lengths, strides, self.regression_ranges):
            pos = torch.arange(length, device=device, dtype=torch.float32) * stride
            rows.append(torch.stack([pos, torch.full_like(pos, lo), torch.full_like(pos, hi),
                                     torch.full_like(pos, float(stride))], dim=1))
        return torch.cat(rows, dim=0)

    @torch.no_grad()
    def assign(self, points: torch.Tensor, gt_segments: torch.Tensor, gt_labels: torch.Tensor,
               num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """points (N, 4); gt_segments (M, 2) grid units; gt_labels (M,).

        Returns cls_targets (N, num_classes) float in {0, 1}, reg_targets (N, 2) in strides,
        positive (N,) bool.
        """
        n = points.shape[0]
        device = points.device
        if gt_segments.numel() == 0:
            return (torch.zeros(n, num_classes, device=device), torch.zeros(n, 2, device=device),
                    torch.zeros(n, dtype=torch.bool, device=device))
        gt = gt_segments.to(device=device, dtype=torch.float32)  # (M, 2)
        pos, lo, hi, stride = (points[:, i:i + 1] for i in range(4))  # (N, 1) each
        left = pos - gt[None, :, 0]  # (N, M)
        right = gt[None, :, 1] - pos
        if self.anchor == "end":  # after the start, near the end (before or after it)
            near_end = (right <= stride * self.end_before) & (-right <= stride * self.end_after)
            inside = (left > 0) & near_end
        elif self.center_sample:
            centre = 0.5 * (gt[:, 0] + gt[:, 1])
            radius = stride * self.center_sample_radius  # (N, 1)
            box_left = torch.maximum(centre[None] - radius, gt[None, :, 0])
            box_right = torch.minimum(centre[None] + radius, gt[None, :, 1])
            inside = torch.minimum(pos - box_left, box_right - pos) > 0
        else:
            inside = torch.minimum(left, right) > 0
        if self.anchor == "end":  # at the end: the centre point's reach, as offline
            reach = 0.5 * left
        else:
            reach = torch.maximum(left, right)
        in_range = (reach >= lo) & (reach <= hi)
        lengths = (gt[:, 1] - gt[:, 0])[None].expand(n, -1)
        lengths = torch.where(inside & in_range, lengths, torch.full_like(lengths, float("inf")))
        min_len, best = lengths.min(dim=1)  # (N,)
        positive = torch.isfinite(min_len)
        # every segment as short as the winner: multi-label targets for duplicated segments
        winners = (lengths <= min_len[:, None] + 1e-3) & torch.isfinite(lengths)  # (N, M)
        if self.multi_label:  # every segment claiming the point
            winners = torch.isfinite(lengths)
        one_hot = torch.nn.functional.one_hot(gt_labels.to(device).long(), num_classes).float()  # (M, K)
        cls_targets = (winners.float() @ one_hot).clamp(max=1.0)
        idx = torch.arange(n, device=device)
        reg_targets = torch.stack([left[idx, best], right[idx, best]], dim=1) / points[:, 3:4]
        reg_targets = torch.where(positive[:, None], reg_targets, torch.zeros_like(reg_targets))
        return cls_targets, reg_targets, positive
