"""From per-level head outputs of one video to scored segments in seconds.

1. per level: class probabilities above ``pre_nms_thresh``, the ``pre_nms_topk`` best
   (point, class) pairs; their segments (already decoded to grid units) with length
   above ``min_length`` grid steps;
2. grid -> seconds through the item's timestamps (``tad.detectors.timeline``), clipped to
   [0, duration]; segments left empty by clipping are dropped;
3. multi-class Gaussian Soft-NMS, optional score voting, the best ``max_seg_num`` kept.

Steps 1-2 (:meth:`SegmentPostProcessor.candidates_in_seconds`) and step 3
(:meth:`SegmentPostProcessor.suppress`) are also callable apart, so the candidates of the
overlapping sliding windows of one video are merged before one NMS.
"""
from __future__ import annotations

import numpy as np
import torch

from tad.detectors.registry import MODELS
from tad.detectors.soft_nms import one_thread, score_voting, soft_nms
from tad.detectors.timeline import grid_to_seconds


@MODELS.register_module()
class SegmentPostProcessor:
    def __init__(self, pre_nms_topk: int = 2000, pre_nms_thresh: float = 0.001, min_length: float = 0.05,
                 nms_sigma: float = 0.5, nms_min_score: float = 0.001, class_agnostic_nms: bool = False,
                 max_seg_num: int = 200, voting_thresh: float = 0.7):
        self.pre_nms_topk = pre_nms_topk
        self.pre_nms_thresh = pre_nms_thresh
        self.min_length = min_length
        self.nms_sigma = nms_sigma
        self.nms_min_score = nms_min_score
        self.class_agnostic_nms = class_agnostic_nms
        self.max_seg_num = max_seg_num
        self.voting_thresh = voting_thresh

    def select_candidates(self, probs: list[torch.Tensor], segments: list[torch.Tensor],
                          masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per level: probs (T_l, K), segments (T_l, 2) grid, masks (T_l,) -> candidates
        (segments (M, 2), scores (M,), labels (M,)), levels concatenated."""
        out_segs, out_scores, out_labels = [], [], []
        for prob, seg, mask in zip(probs, segments, masks):
            num_classes = prob.shape[1]
            flat = (prob * mask[:, None].to(prob.dtype)).flatten()  # (T_l * K,)
            keep = torch.nonzero(flat > self.pre_nms_thresh).squeeze(1)
            if keep.numel() > self.pre_nms_topk:
                top = torch.topk(flat[keep], self.pre_nms_topk).indices
                keep = keep[top]
            point, label = keep // num_classes, keep % num_classes
            seg_l = seg[point]
            long_enough = (seg_l[:, 1] - seg_l[:, 0]) > self.min_length
            out_segs.append(seg_l[long_enough])
            out_scores.append(flat[keep][long_enough])
            out_labels.append(label[long_enough])
        return torch.cat(out_segs), torch.cat(out_scores), torch.cat(out_labels)

    def __call__(self, probs: list[torch.Tensor], segments: list[torch.Tensor], masks: list[torch.Tensor],
                 timestamps, duration: float, video_id: str = "") -> dict:
        with one_thread():  # small tensors on CPU: thread hand-offs would dominate
            return self._process(probs, segments, masks, timestamps, duration, video_id)

    def _process(self, probs, segments, masks, timestamps, duration, video_id) -> dict:
        seconds, scores, labels = self.candidates_in_seconds(probs, segments, masks, timestamps, duration)
        return self.suppress(seconds, scores, labels, duration, video_id)

    def candidates_in_seconds(self, probs: list[torch.Tensor], segments: list[torch.Tensor],
                              masks: list[torch.Tensor], timestamps,
                              duration: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Steps 1-2: candidates (segments (M, 2) seconds in [0, duration], scores (M,), labels (M,)),
        before NMS. Candidates of several windows of one video can be concatenated and
        passed to :meth:`suppress` together."""
        segs, scores, labels = self.select_candidates(
            [p.detach().float().cpu() for p in probs], [s.detach().float().cpu() for s in segments],
            [m.detach().cpu() for m in masks])
        seconds = grid_to_seconds(segs.double(), np.asarray(timestamps, dtype=np.float64))
        seconds = seconds.clamp(0.0, float(duration)).float()
        nonempty = seconds[:, 1] > seconds[:, 0]
        return seconds[nonempty], scores[nonempty], labels[nonempty]

    def suppress(self, seconds: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, duration: float,
                 video_id: str = "") -> dict:
        """Step 3 on candidates in seconds: Soft-NMS, score voting, the best ``max_seg_num``."""
        with one_thread():
            return self._suppress(seconds, scores, labels, duration, video_id)

    def _suppress(self, seconds, scores, labels, duration, video_id) -> dict:
        kept_segs, kept_scores, kept_labels = soft_nms(
            seconds, scores, labels, self.nms_sigma, self.nms_min_score, self.max_seg_num,
            self.class_agnostic_nms, max_total=self.max_seg_num)  # stops once the kept top list is final
        kept_segs, kept_scores, kept_labels = (kept_segs[:self.max_seg_num], kept_scores[:self.max_seg_num],
                                               kept_labels[:self.max_seg_num])
        if self.voting_thresh > 0:
            kept_segs = score_voting(kept_segs, kept_labels, seconds, scores, labels, self.voting_thresh)
            kept_segs = kept_segs.clamp(0.0, float(duration))  # rounding of the weighted mean
        return dict(video_id=video_id, segments=kept_segs.reshape(-1, 2).float(),
                    scores=kept_scores.float(), labels=kept_labels.long())
