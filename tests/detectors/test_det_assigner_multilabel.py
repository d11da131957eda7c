"""PointAssigner(multi_label=True): a point inside segments of several classes is a positive
for each of them (multi-label sets); the default keeps only the shortest segment's class."""
from __future__ import annotations

import torch

from tad.detectors.assigner import PointAssigner


def test_nested_segments_of_two_classes():
    kwargs = dict(regression_ranges=[(0, 10000)], center_sample=False)
    points = PointAssigner(**kwargs).points([40], [1])
    gt = torch.tensor([[0.0, 39.0], [10.0, 20.0]])  # a long class-0 context, a short class-1 action inside
    labels = torch.tensor([0, 1])
    single_cls, single_reg, single_pos = PointAssigner(**kwargs).assign(points, gt, labels, num_classes=2)
    multi_cls, multi_reg, multi_pos = PointAssigner(**kwargs, multi_label=True).assign(points, gt, labels, num_classes=2)
    inside_both = (points[:, 0] > 10) & (points[:, 0] < 20)
    # default: only the shortest segment's class inside the short action
    assert (single_cls[inside_both] == torch.tensor([0.0, 1.0])).all()
    # multi-label: both classes; regression still to the shortest segment
    assert (multi_cls[inside_both] == 1.0).all()
    assert torch.equal(multi_reg, single_reg) and torch.equal(multi_pos, single_pos)
    # outside the short action, only the context's class, in both modes
    only_ctx = (points[:, 0] > 0) & (points[:, 0] < 39) & ~((points[:, 0] >= 10) & (points[:, 0] <= 20))
    assert torch.equal(multi_cls[only_ctx], single_cls[only_ctx])
    assert (multi_cls[only_ctx] == torch.tensor([1.0, 0.0])).all()
