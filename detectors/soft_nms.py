"""Multi-class Gaussian Soft-NMS and score voting for 1D segments, in plain torch.

Soft-NMS repeats: take the highest-scoring remaining segment (kept with its current
score), multiply every remaining segment's score by ``exp(-IoU^2 / sigma)`` with it, and
drop those that fall below ``min_score``. Classes never suppress each other: all classes
run at once as rows of a padded (classes, candidates) matrix, so one iteration is a few
tensor ops whatever the number of classes, and at most ``max_per_class`` iterations run
(picked scores only decrease, so later picks could never enter the final top list).
"""
from __future__ import annotations

import contextlib

import torch

from tad.detectors.registry import MODELS


def segment_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """IoU of (..., 2) segments broadcast against (..., 2) segments -> (...)."""
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    return inter / union.clamp(min=eps)


def _group_by_class(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Row (class group) and column (rank inside the group) of each candidate."""
    _, group = torch.unique(labels, return_inverse=True)
    order = torch.argsort(group, stable=True)
    counts = torch.bincount(group)
    starts = torch.cumsum(counts, 0) - counts
    column = torch.empty_like(group)
    column[order] = torch.arange(len(group), device=labels.device) - starts[group[order]]
    return group, column, len(counts), int(counts.max())


@contextlib.contextmanager
def one_thread():
    """The loop runs hundreds of tiny ops: with intra-op threads each one pays a hand-off
    (up to 20x slower on a busy CPU), so run it single-threaded and restore afterwards."""
    before = torch.get_num_threads()
    if before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before > 1:
            torch.set_num_threads(before)


def soft_nms(segments: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, sigma: float = 0.5,
             min_score: float = 0.001, max_per_class: int = 200, class_agnostic: bool = False,
             max_total: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """segments (N, 2), scores (N,), labels (N,) -> kept (segments, decayed scores, labels),
    sorted by score, descending.

    ``max_total``: only the first ``max_total`` kept segments are wanted (the post-processor's
    cap per video). The loop then stops as soon as ``max_total`` kept scores are >= every
    remaining score (a later pick can only score lower or tie, and ties rank after earlier
    picks), and stops iterating classes whose best remaining score is below the
    ``max_total``-th kept one: the first ``max_total`` results are exactly those of the full
    loop; only the tail beyond them is shorter.
    """
    if segments.numel() == 0:
        return segments.reshape(0, 2), scores.reshape(0), labels.reshape(0)
    if segments.device.type != "cpu":
        return _soft_nms(segments, scores, labels, sigma, min_score, max_per_class, class_agnostic, max_total)
    with one_thread():
        return _soft_nms(segments, scores, labels, sigma, min_score, max_per_class, class_agnostic, max_total)


def _soft_nms(segments, scores, labels, sigma, min_score, max_per_class, class_agnostic, max_total=None):
    device = segments.device
    group_labels = torch.zeros_like(labels) if class_agnostic else labels
    group, column, num_groups, width = _group_by_class(group_labels)
    seg_pad = torch.zeros(num_groups, width, 2, dtype=segments.dtype, device=device)
    score_pad = torch.zeros(num_groups, width, dtype=scores.dtype, device=device)
    label_pad = torch.zeros(num_groups, width, dtype=labels.dtype, device=device)
    alive = torch.zeros(num_groups, width, dtype=torch.bool, device=device)
    seg_pad[group, column] = segments
    score_pad[group, column] = scores
    label_pad[group, column] = labels
    alive[group, column] = scores >= min_score

    # the working set: rows (classes) and columns still in play, as indices into the pads
    row_ids = torch.arange(num_groups, device=device)
    col_ids = torch.arange(width, device=device)
    work_segs, work_scores, work_alive = seg_pad, score_pad.clone(), alive
    kept_rows, kept_cols, kept_scores = [], [], []
    num_kept = 0
    for step in range(min(width, max_per_class)):
        current = torch.where(work_alive, work_scores, torch.full_like(work_scores, float("-inf")))
        best_score, best = current.max(dim=1)  # (G',)
        valid = torch.isfinite(best_score)
        if not bool(valid.any()):
            break
        if max_total is not None and num_kept >= max_total:
            kth = torch.topk(torch.cat(kept_scores), max_total).values[-1]
            if bool(kth >= best_score.max()):
                break  # no later pick can enter the first max_total
            # classes whose best remaining score is below the kth kept can never enter either
            valid &= best_score >= kth
        r = torch.arange(len(row_ids), device=device)
        kept_rows.append(row_ids[valid])
        kept_cols.append(col_ids[best[valid]])
        kept_scores.append(best_score[valid])
        num_kept += int(valid.sum())
        work_alive[r, best] = False
        iou = segment_iou(work_segs[r, best][:, None, :], work_segs)  # (G', W')
        work_scores = torch.where(work_alive, work_scores * torch.exp(-(iou * iou) / sigma), work_scores)
        work_alive &= (work_scores >= min_score) & valid[:, None]
        if step % 4 == 3:  # drop finished classes and columns dead in every class
            live_rows, live_cols = work_alive.any(dim=1), work_alive.any(dim=0)
            if int(live_rows.sum()) < 0.75 * len(row_ids) or int(live_cols.sum()) < 0.75 * len(col_ids):
                rr, cc = torch.nonzero(live_rows).squeeze(1), torch.nonzero(live_cols).squeeze(1)
                row_ids, col_ids = row_ids[rr], col_ids[cc]
                work_segs = work_segs[rr][:, cc]
                work_scores = work_scores[rr][:, cc]
                work_alive = work_alive[rr][:, cc]
                if not len(row_ids) or not len(col_ids):
                    break

    if not kept_rows:
        return segments.reshape(0, 2)[:0], scores[:0], labels[:0]
    out_rows, out_cols = torch.cat(kept_rows), torch.cat(kept_cols)
    out_scores = torch.cat(kept_scores)
    order = torch.argsort(out_scores, descending=True, stable=True)
    return (seg_pad[out_rows, out_cols][order], out_scores[order], label_pad[out_rows, out_cols][order])


def score_voting(kept_segments: torch.Tensor, kept_labels: torch.Tensor, segments: torch.Tensor,
                 scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float = 0.7) -> torch.Tensor:
    """Replace each kept segment by the score x IoU weighted mean of the candidates of its
    class that overlap it by at least ``iou_threshold`` (itself included). -> (K, 2)."""
    if kept_segments.numel() == 0 or segments.numel() == 0:
        return kept_segments
    iou = segment_iou(kept_segments[:, None, :], segments[None, :, :])  # (K, N)
    same = kept_labels[:, None] == labels[None, :]
    weights = torch.where(same & (iou >= iou_threshold), iou * scores[None, :], torch.zeros_like(iou))
    total = weights.sum(dim=1, keepdim=True)
    voted = weights @ segments / total.clamp(min=1e-12)
    return torch.where(total > 0, voted, kept_segments)


@MODELS.register_module()
class SoftNMS:
    """Config wrapper: ``dict(type='SoftNMS', sigma=0.5, min_score=0.001, class_agnostic=False)``."""

    def __init__(self, sigma: float = 0.5, min_score: float = 0.001, class_agnostic: bool = False):
        self.sigma, self.min_score, self.class_agnostic = sigma, min_score, class_agnostic

    def __call__(self, segments, scores, labels, max_per_class: int = 200, max_total: int | None = None):
        return soft_nms(segments, scores, labels, self.sigma, self.min_score, max_per_class,
                        self.class_agnostic, max_total)
