"""Label assignment on hand cases; focal / DIoU losses on hand values; the EMA normaliser."""
import math

import pytest
import torch

from tad.detectors.assigner import PointAssigner
from tad.detectors.losses import PositiveCountNormalizer, diou_loss_1d, sigmoid_focal_loss


def test_points_layout():
    a = PointAssigner([(0, 2), (2, 100)])
    pts = a.points([8, 4], [1, 2])
    assert pts.shape == (12, 4)
    assert pts[:8, 0].tolist() == list(range(8)) and pts[8:, 0].tolist() == [0, 2, 4, 6]
    assert pts[:8, 1:].unique(dim=0).tolist() == [[0, 2, 1]]
    assert pts[8:, 1:].unique(dim=0).tolist() == [[2, 100, 2]]


def test_centre_sampling_and_ranges():
    a = PointAssigner([(0, 2), (2, 100)], center_sample_radius=1.5)
    pts = a.points([8, 4], [1, 2])
    cls_t, reg_t, pos = a.assign(pts, torch.tensor([[2.0, 5.0]]), torch.tensor([1]), num_classes=3)
    # level 0: centre 3.5 +- 1.5 clipped to [2, 5] -> points 3 and 4, reach 2 in range (0, 2)
    # level 1: centre box +- 3 clipped to [2, 5] -> point at 4 (index 2), reach 2 in range (2, 100)
    assert torch.nonzero(pos).squeeze(1).tolist() == [3, 4, 10]
    assert reg_t[3].tolist() == [1.0, 2.0] and reg_t[4].tolist() == [2.0, 1.0]
    assert reg_t[10].tolist() == [1.0, 0.5]  # distances (2, 1) divided by stride 2
    assert cls_t[pos].tolist() == [[0, 1, 0]] * 3
    assert cls_t[~pos].sum() == 0 and reg_t[~pos].abs().sum() == 0


def test_end_anchor_positives_near_the_end_with_signed_end():
    """anchor='end' (causal models): points after the start, from 1 stride before the end to
    2 strides after it; the end distance is negative after the end."""
    a = PointAssigner([(0, 100)], anchor="end", end_before=1.0, end_after=2.0)
    pts = a.points([16], [1])
    cls_t, reg_t, pos = a.assign(pts, torch.tensor([[3.0, 9.0]]), torch.tensor([2]), num_classes=3)
    assert torch.nonzero(pos).squeeze(1).tolist() == [8, 9, 10, 11]  # not the centre (6)
    assert reg_t[pos].tolist() == [[5.0, 1.0], [6.0, 0.0], [7.0, -1.0], [8.0, -2.0]]
    assert cls_t[pos].tolist() == [[0, 0, 1]] * 4 and cls_t[~pos].sum() == 0
    # a short segment: never before its start
    _, _, pos = a.assign(pts, torch.tensor([[3.0, 3.5]]), torch.tensor([0]), num_classes=3)
    assert torch.nonzero(pos).squeeze(1).tolist() == [4, 5]


def test_end_anchor_uses_the_offline_level():
    """The level test of anchor='end' uses half the start distance: at the end it is the centre
    point's reach (half the length), so the segment lands on the level the offline rule picks."""
    ranges = [(0, 4), (4, 16), (16, 100)]
    end = PointAssigner(ranges, anchor="end")  # defaults: from the end to 2 strides after it
    centre = PointAssigner(ranges)
    pts = end.points([32, 16, 8], [1, 2, 4])
    gt, label = torch.tensor([[0.0, 20.0]]), torch.tensor([0])
    _, reg_t, pos = end.assign(pts, gt, label, num_classes=1)
    level_of = torch.cat([torch.full((n,), i) for i, n in enumerate([32, 16, 8])])
    hits = torch.nonzero(pos).squeeze(1)
    # level 1 (stride 2): positions 20, 22, 24 (reach 10, 11, 12); with the start distance itself
    # (20 .. 24) the segment would sit on level 2
    assert [(int(level_of[i]), float(pts[i, 0])) for i in hits] == [(1, 20.0), (1, 22.0), (1, 24.0)]
    assert reg_t[hits[0]].tolist() == [10.0, 0.0] and reg_t[hits[2]].tolist() == [12.0, -2.0]
    _, _, offline = centre.assign(pts, gt, label, num_classes=1)
    assert {int(level_of[i]) for i in torch.nonzero(offline).squeeze(1)} == {1}  # the offline level


def test_end_anchor_rejects_bad_options():
    with pytest.raises(ValueError, match="anchor"):
        PointAssigner([(0, 100)], anchor="middle")
    with pytest.raises(ValueError, match="end_before"):
        PointAssigner([(0, 100)], anchor="end", end_before=-1)


def test_out_of_range_level_is_negative():
    a = PointAssigner([(0, 1), (1, 100)], center_sample_radius=1.5)
    pts = a.points([8, 4], [1, 2])
    _, _, pos = a.assign(pts, torch.tensor([[2.0, 5.0]]), torch.tensor([0]), num_classes=1)
    # reach 2 exceeds level 0's range (0, 1): only the level-1 point is positive
    assert torch.nonzero(pos).squeeze(1).tolist() == [10]


def test_smallest_segment_wins_and_duplicates_are_multilabel():
    a = PointAssigner([(0, 100)], center_sample_radius=1.5)
    pts = a.points([10], [1])
    gts = torch.tensor([[0.0, 7.0], [2.0, 5.0], [2.0, 5.0]])
    cls_t, reg_t, pos = a.assign(pts, gts, torch.tensor([0, 1, 2]), num_classes=3)
    assert torch.nonzero(pos).squeeze(1).tolist() == [3, 4]
    assert cls_t[3].tolist() == [0, 1, 1]  # the short segment (twice labelled) wins
    assert reg_t[3].tolist() == [1.0, 2.0]


def test_no_ground_truth():
    a = PointAssigner([(0, 100)])
    cls_t, reg_t, pos = a.assign(a.points([6], [1]), torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 4)
    assert cls_t.shape == (6, 4) and reg_t.shape == (6, 2) and not pos.any()


def test_focal_loss_hand_values():
    ln2 = math.log(2)
    logits = torch.tensor([0.0, 0.0, 20.0, -20.0])
    targets = torch.tensor([1.0, 0.0, 1.0, 0.0])
    loss = sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0, reduction="none")
    expected = torch.tensor([0.25 * 0.25 * ln2, 0.75 * 0.25 * ln2, 0.0, 0.0])
    torch.testing.assert_close(loss, expected, atol=1e-7, rtol=1e-5)
    # gamma=0, no alpha -> plain binary cross entropy
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([0.3]), torch.tensor([1.0]))
    torch.testing.assert_close(sigmoid_focal_loss(torch.tensor([0.3]), torch.tensor([1.0]), -1, 0.0), bce)


def test_diou_loss_hand_values():
    pred = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0], [1.0, 3.0]])
    target = torch.tensor([[1.0, 1.0], [2.0, 2.0], [2.0, 0.0], [1.0, 1.0]])
    loss = diou_loss_1d(pred, target, reduction="none")
    # identical; IoU 0.5 same centre; disjoint (IoU 0, centres 2 apart, hull 4); IoU 0.5, centres 1 apart, hull 4
    expected = torch.tensor([0.0, 0.5, 1.25, 1 - 0.5 + (1 / 4) ** 2])
    torch.testing.assert_close(loss, expected)
    assert diou_loss_1d(pred, target).item() == loss.sum().item()


def test_positive_count_normalizer():
    norm = PositiveCountNormalizer(100.0, 0.9)
    assert norm(10).item() == 91.0
    assert abs(norm(0).item() - (0.9 * 91 + 0.1)) < 1e-4  # zero positives count as one
    norm.eval()
    assert abs(norm(1000).item() - (0.9 * 91 + 0.1)) < 1e-4  # frozen in eval
    assert "value" in norm.state_dict()
