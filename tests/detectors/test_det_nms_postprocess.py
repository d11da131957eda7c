"""Soft-NMS against a naive loop; score voting; post-processing to seconds via timestamps."""
import numpy as np
import pytest
import torch

from tad.detectors.postprocess import SegmentPostProcessor
from tad.detectors.soft_nms import score_voting, soft_nms


def naive_soft_nms(segments, scores, labels, sigma, min_score, max_per_class):
    out = []
    for c in sorted(set(labels.tolist())):
        idx = [i for i in range(len(labels)) if labels[i] == c and scores[i] >= min_score]
        segs = {i: segments[i].tolist() for i in idx}
        cur = {i: float(scores[i]) for i in idx}
        picked = 0
        while cur and picked < max_per_class:
            best = max(cur, key=lambda i: cur[i])
            out.append((segs[best], cur.pop(best), c))
            picked += 1
            s0, e0 = segs[best]
            for i in list(cur):
                s1, e1 = segs[i]
                inter = max(0.0, min(e0, e1) - max(s0, s1))
                iou = inter / ((e0 - s0) + (e1 - s1) - inter)
                cur[i] *= float(np.exp(-iou * iou / sigma))
                if cur[i] < min_score:
                    del cur[i]
    out.sort(key=lambda r: -r[1])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_nms_equals_naive_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    n = 300
    starts = torch.rand(n, generator=gen, dtype=torch.float64) * 100
    segments = torch.stack([starts, starts + 1 + torch.rand(n, generator=gen, dtype=torch.float64) * 20], 1)
    scores = torch.rand(n, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 5, (n,), generator=gen)
    got = soft_nms(segments, scores, labels, sigma=0.5, min_score=0.05, max_per_class=40)
    ref = naive_soft_nms(segments, scores, labels, 0.5, 0.05, 40)
    assert len(got[0]) == len(ref)
    np.testing.assert_allclose(got[0].numpy(), np.array([r[0] for r in ref]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1].numpy(), np.array([r[1] for r in ref]), rtol=1e-10, atol=1e-12)
    assert got[2].tolist() == [r[2] for r in ref]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_soft_nms_early_exit_keeps_the_first_max_total_exactly(seed):
    """max_total (the post-processor's cap) stops the loop early: the first max_total results equal
    the plain loop's, bit for bit (ties included: scores quantised so that many tie)."""
    gen = torch.Generator().manual_seed(seed)
    n = 600
    starts = torch.rand(n, generator=gen, dtype=torch.float64) * 200
    segments = torch.stack([starts, starts + 1 + torch.rand(n, generator=gen, dtype=torch.float64) * 30], 1)
    scores = torch.rand(n, generator=gen, dtype=torch.float64)
    if seed % 2:
        scores = (scores * 20).round() / 20 + 0.01
    labels = torch.randint(0, 8, (n,), generator=gen)
    full = soft_nms(segments, scores, labels, sigma=0.5, min_score=0.001, max_per_class=60)
    ref = naive_soft_nms(segments, scores, labels, 0.5, 0.001, 60)
    assert len(full[0]) == len(ref)
    for max_total in (1, 25, 100):
        got = soft_nms(segments, scores, labels, sigma=0.5, min_score=0.001, max_per_class=60,
                       max_total=max_total)
        assert len(got[0]) >= max_total
        for a, b in zip(got, full):
            assert torch.equal(a[:max_total], b[:max_total])
        np.testing.assert_allclose(got[1][:max_total].numpy(), np.array([r[1] for r in ref[:max_total]]),
                                   rtol=1e-10, atol=1e-12)


def test_soft_nms_is_class_aware_and_handles_empty():
    segs = torch.tensor([[0.0, 10.0], [0.0, 10.0]])
    kept = soft_nms(segs, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]))
    assert kept[1].tolist() == pytest.approx([0.9, 0.8])  # other class: no decay
    kept = soft_nms(segs, torch.tensor([0.9, 0.8]), torch.tensor([0, 0]), sigma=0.5)
    assert kept[1].tolist() == pytest.approx([0.9, 0.8 * np.exp(-2.0)])
    empty = soft_nms(torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert empty[0].shape == (0, 2)


def test_score_voting():
    kept = torch.tensor([[0.0, 10.0]])
    cands = torch.tensor([[0.0, 10.0], [1.0, 10.0], [50.0, 60.0], [0.0, 10.5]])
    scores = torch.tensor([0.8, 0.4, 0.9, 0.5])
    labels = torch.tensor([0, 0, 0, 1])
    voted = score_voting(kept, torch.tensor([0]), cands, scores, labels, iou_threshold=0.7)
    # [1, 10] (IoU 0.9) joins with weight 0.4 * 0.9; [50, 60] too far; [0, 10.5] other class
    w1 = 0.8
    w2 = 0.4 * 0.9
    torch.testing.assert_close(voted, torch.tensor([[(w2 * 1.0) / (w1 + w2), 10.0]]))


def test_postprocess_maps_grid_to_seconds_with_nonuniform_timestamps():
    timestamps = np.array([0.5, 1.0, 2.0, 4.0, 8.0])  # non-uniform steps
    probs = torch.zeros(5, 2)
    probs[2, 1] = 0.9  # class 1 at point 2
    probs[4, 0] = 0.6  # class 0 at point 4
    segments = torch.zeros(5, 2)
    segments[2] = torch.tensor([1.0, 3.0])     # -> [1.0, 4.0] s
    segments[4] = torch.tensor([2.5, 5.5])     # -> [3.0, 8 + 1.5 * 4 = 14] s, clipped to duration 10
    post = SegmentPostProcessor(voting_thresh=0.0)
    out = post([probs], [segments], [torch.ones(5, dtype=torch.bool)], timestamps, duration=10.0, video_id="v")
    assert out["video_id"] == "v"
    assert out["labels"].tolist() == [1, 0]
    torch.testing.assert_close(out["scores"], torch.tensor([0.9, 0.6]))
    torch.testing.assert_close(out["segments"], torch.tensor([[1.0, 4.0], [3.0, 10.0]]))


def test_postprocess_topk_threshold_mask_and_cap():
    probs = torch.full((50, 3), 0.0005)
    probs[:40, 0] = torch.linspace(0.1, 0.9, 40)
    segments = torch.stack([torch.arange(50.0), torch.arange(50.0) + 0.5], 1)  # disjoint, grid units
    mask = torch.ones(50, dtype=torch.bool)
    mask[39] = False  # the best point is padding
    post = SegmentPostProcessor(pre_nms_topk=10, max_seg_num=4, voting_thresh=0.0)
    cands = post.select_candidates([probs], [segments], [mask])
    assert len(cands[1]) == 10 and cands[1].max() < 0.9  # top-10, padding excluded, below-threshold gone
    out = post([probs], [segments], [mask], np.arange(50, dtype=float) * 10, duration=1000.0)
    assert len(out["scores"]) == 4  # max_seg_num
    assert out["segments"][0].tolist() == [380.0, 385.0]  # point 38: the best valid one
    assert out["scores"].tolist() == sorted(out["scores"].tolist(), reverse=True)
