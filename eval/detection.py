"""Detection mAP at temporal IoU thresholds: the ActivityNet protocol, vectorised.

Protocol (ActivityNet ``eval_detection.py`` / ActionFormer ``ANETdetection``):

* GT of the chosen subset, with GT shorter than 1e-3 s and duplicates (same class, start
  and end within 1e-3 s of an earlier GT) removed.
* Per class, predictions ranked by score (descending, stable: ties keep input order).
* Each prediction, in rank order, is matched to the still unmatched GT of the same video
  and class with the highest tIoU; it is a true positive when that tIoU >= threshold,
  otherwise a false positive (also when its video has no GT of its class or is not in the
  subset at all). Matching is done independently for every threshold.
* AP per class: VOC all-point interpolated area under precision/recall; mAP is the mean
  over the classes that have GT in the subset; ``average_mAP`` the mean over thresholds.

Only the order in which equal-tIoU GT are tried is unspecified by the reference (it depends
on numpy's sort); here the GT listed first in the annotation file wins. Predictions whose
scores tie are likewise implementation-defined there; stable here.

Speed: all classes and videos are matched together. Only (prediction, GT) pairs with tIoU
>= the smallest threshold matter; predictions and GT of one class and video that chain by
temporal overlap form independent clusters, and step k matches the k-th ranked prediction
of every cluster at once, so the Python loop runs as often as the largest cluster has
predictions (a few dozen on THUMOS14), not once per prediction.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from tad.errors import TadInputError
from tad.eval.annotations import DUPLICATE_TOLERANCE, AnnotationSet, remove_duplicate_segments

__all__ = ["DEFAULT_TIOU_THRESHOLDS", "DetectionResult", "TadEvalWarning", "VideoMatches", "evaluate_detections",
           "interpolated_ap"]

DEFAULT_TIOU_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
_CHUNK = 1024  # predictions per block when computing tIoU against padded GT rows


class TadEvalWarning(UserWarning):
    """Something in the predictions that the protocol scores silently (e.g. unknown videos)."""


@dataclass
class DetectionResult:
    tiou_thresholds: np.ndarray            # (T,)
    mAP: np.ndarray                        # (T,) fractions
    average_mAP: float
    per_class_AP: dict[str, np.ndarray]    # class -> (T,), classes with GT in the subset
    subset: str | None = None
    num_videos: int = 0
    num_gt: int = 0
    num_predictions: int = 0
    recall: dict[int, np.ndarray] | None = None   # k -> (T,) recall with the top k x #GT per video and class
    warnings: list[str] = field(default_factory=list)
    #: class -> (precision (T, N), recall (T, N)) over that class's N ranked predictions
    pr_curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    #: with ``keep_matches``: video id -> VideoMatches (TP flags of its predictions, matched flags of its GT)
    matches: dict[str, "VideoMatches"] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The metrics JSON: fractions in [0, 1]."""
        out: dict[str, Any] = {
            "tiou_thresholds": [float(t) for t in self.tiou_thresholds],
            "mAP": [float(x) for x in self.mAP],
            "average_mAP": float(self.average_mAP),
            "per_class_AP": {c: [float(x) for x in ap] for c, ap in self.per_class_AP.items()},
        }
        if self.recall is not None:
            out["recall"] = {f"{k}x": [float(x) for x in r] for k, r in self.recall.items()}
        return out

    def format_table(self, per_class: bool = False) -> str:
        """mAP (and optionally per-class AP / recall) in percent, as a plain-text table."""
        ths = [f"{t:.2f}" for t in self.tiou_thresholds]
        rows: list[list[str]] = []
        header = ["tIoU"] + ths + ["Avg"]
        rows.append(["mAP (%)"] + [f"{100 * x:.2f}" for x in self.mAP] + [f"{100 * self.average_mAP:.2f}"])
        if self.recall is not None:
            for k, r in self.recall.items():
                rows.append([f"R@{k}x (%)"] + [f"{100 * x:.2f}" for x in r] + [f"{100 * r.mean():.2f}"])
        if per_class:
            rows.append(None)  # type: ignore[arg-type]
            for cls, ap in self.per_class_AP.items():
                rows.append([cls] + [f"{100 * x:.2f}" for x in ap] + [f"{100 * ap.mean():.2f}"])
        widths = [max(len(r[i]) for r in [header] + [r for r in rows if r is not None]) for i in range(len(header))]
        line = lambda cells: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                                       for i, c in enumerate(cells))
        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        out = [line(header), rule]
        out += [rule if r is None else line(r) for r in rows]
        return "\n".join(out)


@dataclass
class VideoMatches:
    """The protocol's matching on one video, at each of the T thresholds.

    ``is_tp`` (T, P): prediction ``j`` (in the order given for the video) is a true positive;
    ``gt_matched`` (T, G): GT ``i`` (in annotation file order) was matched. GT the protocol
    drops (shorter than 1e-3 s, duplicates) are never matched."""

    is_tp: np.ndarray
    gt_matched: np.ndarray


def _matches_per_video(tp, rank_order, pvids, pcounts, gt_hit, g_flat, vid_ids, videos) -> dict[str, VideoMatches]:
    """Rank-ordered TP flags and sorted-GT hits -> per-video flags in input / file order."""
    num_t = tp.shape[0]
    tp_input = np.zeros_like(tp)
    tp_input[:, rank_order] = tp
    gt_sizes = np.array([len(videos[v].labels) for v in vid_ids], np.int64)
    gt_flat_hit = np.zeros((num_t, int(gt_sizes.sum())), bool)
    gt_flat_hit[:, g_flat] = gt_hit
    gt_offsets = np.concatenate([[0], np.cumsum(gt_sizes)])
    out = {vid: VideoMatches(np.zeros((num_t, 0), bool), gt_flat_hit[:, gt_offsets[i]:gt_offsets[i + 1]])
           for i, vid in enumerate(vid_ids)}
    p_offsets = np.concatenate([[0], np.cumsum(pcounts)]).astype(np.int64)
    for i, vid in enumerate(pvids):
        gt_part = out[vid].gt_matched if vid in out else np.zeros((num_t, 0), bool)
        out[vid] = VideoMatches(tp_input[:, p_offsets[i]:p_offsets[i + 1]], gt_part)
    return out


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """VOC all-point interpolated AP of ranked precision/recall, rows independent.

    precision, recall: (T, N) -> (T,)."""
    t = precision.shape[0]
    mprec = np.concatenate([np.zeros((t, 1)), precision, np.zeros((t, 1))], axis=1)
    mrec = np.concatenate([np.zeros((t, 1)), recall, np.ones((t, 1))], axis=1)
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]  # precision envelope
    step = np.diff(mrec, axis=1)  # zero where recall does not change
    ap = np.sum(np.where(step != 0, step * mprec[:, 1:], 0.0), axis=1)
    return ap


def _block_tiou(idx: np.ndarray, p_group: np.ndarray, p_s: np.ndarray, p_e: np.ndarray, group_start: np.ndarray,
                group_size: np.ndarray, g_s: np.ndarray, g_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tIoU of predictions ``idx`` with every GT of their group, padded to the block's
    widest group: (iou (n, w), -1 on padding; GT index (n, w)). Same arithmetic as the
    reference: inter / ((gt length + prediction length) - inter)."""
    g = p_group[idx]
    w = int(group_size[g].max())
    cols = np.arange(w)
    valid = cols[None, :] < group_size[g][:, None]
    gidx = np.minimum(group_start[g][:, None] + cols[None, :], len(g_s) - 1)
    gs, ge = g_s[gidx], g_e[gidx]
    ps, pe = p_s[idx][:, None], p_e[idx][:, None]
    inter = np.clip(np.minimum(pe, ge) - np.maximum(ps, gs), 0, None)
    union = (ge - gs) + (pe - ps) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where(valid, iou, -1.0), gidx


def _flatten_predictions(predictions: Mapping[str, Sequence[Mapping[str, Any]]], class_index: dict[str, int],
                         classes: Sequence[str]):
    vids = [str(v) for v in predictions]
    counts = np.fromiter((len(d) for d in predictions.values()), np.int64, len(vids))
    rows = [(d["label"], d["score"], d["segment"][0], d["segment"][1])
            for dets in predictions.values() for d in dets]
    if not rows:
        z = np.zeros(0)
        return vids, counts, np.zeros(0, np.int64), z, z, z
    names, scores, starts, ends = zip(*rows)
    try:
        labels = np.fromiter((class_index[x] for x in names), np.int64, len(names))
    except (KeyError, TypeError):  # integer class ids, or an unknown label
        labels = np.empty(len(names), np.int64)
        for j, label in enumerate(names):
            cid = class_index.get(label) if isinstance(label, str) else (
                int(label) if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(classes) else None)
            if cid is None:
                v = int(np.searchsorted(np.cumsum(counts), j, side="right"))
                raise TadInputError("predictions", f"results[{vids[v]!r}]: unknown label {label!r}") from None
            labels[j] = cid
    return (vids, counts, labels, np.asarray(scores, np.float64), np.asarray(starts, np.float64),
            np.asarray(ends, np.float64))


def _subset_gt(videos: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(video index, class, start, end, flat index among all GT) of the GT kept by the protocol, in file order.

    Duplicates need two GT of one class and video starting within the tolerance, which a
    sort reveals; only videos that have such a pair run the exact (order-dependent) rule."""
    sizes = np.array([len(v.labels) for v in videos], np.int64)
    vid = np.repeat(np.arange(len(videos)), sizes)
    if not len(vid):
        z = np.zeros(0)
        return vid, vid.copy(), z, z, vid.copy()
    cls = np.concatenate([v.labels for v in videos]).astype(np.int64)
    seg = np.concatenate([v.segments for v in videos]).astype(np.float64)
    keep = (seg[:, 1] - seg[:, 0]) >= DUPLICATE_TOLERANCE
    order = np.lexsort((seg[:, 0], cls, vid))
    near = ((vid[order][1:] == vid[order][:-1]) & (cls[order][1:] == cls[order][:-1])
            & (np.abs(np.diff(seg[order, 0])) <= DUPLICATE_TOLERANCE))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for i in np.unique(vid[order][1:][near]):
        kept = remove_duplicate_segments(videos[i].segments, videos[i].labels)
        keep[offsets[i]:offsets[i + 1]] = False
        keep[offsets[i] + kept] = True
    return vid[keep], cls[keep], seg[keep, 0], seg[keep, 1], np.nonzero(keep)[0]


def evaluate_detections(ann: AnnotationSet, predictions: Mapping[str, Sequence[Mapping[str, Any]]],
                        subset: str | None = "test",
                        tiou_thresholds: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
                        recall_top_k: Sequence[int] | None = None, keep_matches: bool = False) -> DetectionResult:
    """Score ``predictions[video_id] = [{"label", "score", "segment"}]`` against the GT of
    ``subset`` (case-insensitive; None = all videos). See the module docstring.

    ``keep_matches``: also return, per video, which predictions are true positives and which
    GT they matched at every threshold (``DetectionResult.matches``): the very matching the
    APs are computed from, for pictures that must agree with the score."""
    thr = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)
    if thr.size == 0 or not np.all((thr > 0) & (thr <= 1)):
        raise ValueError(f"tIoU thresholds must lie in (0, 1], got {list(tiou_thresholds)}")
    if not ann.has_subset(subset):
        raise TadInputError(ann.path or "annotations",
                            f"no subset {subset!r} (subsets: {', '.join(ann.subsets) or 'none'})")
    videos = ann.subset(subset)
    num_t = len(thr)

    # ---- ground truth of the subset, sorted into (class, video) groups ----
    vid_ids = list(videos)
    vid_index = {v: i for i, v in enumerate(vid_ids)}
    g_vid, g_cls, g_s, g_e, g_flat = _subset_gt([videos[v] for v in vid_ids])
    n_vid = max(len(vid_ids), 1)
    gt_key = g_cls * n_vid + g_vid
    order = np.argsort(gt_key, kind="stable")  # file order within a group
    gt_key, g_s, g_e, g_cls, g_flat = gt_key[order], g_s[order], g_e[order], g_cls[order], g_flat[order]
    group_keys, group_start, group_size = np.unique(gt_key, return_index=True, return_counts=True)
    n_groups = len(group_keys)
    grp_of_gt = np.repeat(np.arange(n_groups), group_size)
    gt_classes = np.unique(g_cls)  # classes present in the subset's GT
    npos = np.bincount(g_cls, minlength=len(ann.classes)).astype(np.float64)

    # ---- predictions ----
    pvids, pcounts, p_cls, p_score, p_s, p_e = _flatten_predictions(predictions, ann.class_index, ann.classes)
    n_pred = len(p_cls)
    warns: list[str] = []
    pv = np.array([vid_index.get(v, -1) for v in pvids], np.int64)
    unknown = [i for i, v in enumerate(pvids) if v not in ann.videos and pcounts[i]]
    other = [i for i, v in enumerate(pvids) if v in ann.videos and pv[i] < 0 and pcounts[i]]
    if unknown:
        warns.append(f"{int(pcounts[unknown].sum())} predictions on {len(unknown)} videos absent from the "
                     f"annotations (e.g. {pvids[unknown[0]]!r}) were scored as false positives")
    if other:
        warns.append(f"{int(pcounts[other].sum())} predictions on {len(other)} videos of other subsets than "
                     f"{subset!r} (e.g. {pvids[other[0]]!r}) were scored as false positives")
    for w in warns:
        warnings.warn(w, TadEvalWarning, stacklevel=2)
    p_vid = np.repeat(pv, pcounts)

    # rank per class: by class, then score descending, stable
    rank_order = np.lexsort((-p_score, p_cls))
    p_cls, p_score, p_s, p_e, p_vid = (a[rank_order] for a in (p_cls, p_score, p_s, p_e, p_vid))
    # group of each prediction (-1: no GT of its class in its video)
    p_group = np.full(n_pred, -1, np.int64)
    in_subset = p_vid >= 0
    if n_groups:
        key = p_cls * n_vid + p_vid
        pos = np.searchsorted(group_keys, key)
        pos_c = np.minimum(pos, n_groups - 1)
        hit = in_subset & (group_keys[pos_c] == key)
        p_group[hit] = pos_c[hit]

    # candidate (prediction, GT) pairs: same class and video, tIoU >= the smallest threshold
    cand = np.nonzero(p_group >= 0)[0]
    cand = cand[np.argsort(group_size[p_group[cand]], kind="stable")]  # blocks of similar GT count
    thr_min = thr.min()
    pair_pred, pair_gt, pair_iou = [], [], []
    for c0 in range(0, len(cand), _CHUNK):
        idx = cand[c0:c0 + _CHUNK]
        iou, gidx = _block_tiou(idx, p_group, p_s, p_e, group_start, group_size, g_s, g_e)  # (n, w)
        r, c = np.nonzero(iou >= thr_min)
        pair_pred.append(idx[r])
        pair_gt.append(gidx[r, c])
        pair_iou.append(iou[r, c])
    tp = np.zeros((num_t, n_pred), bool)
    gt_hit = np.zeros((num_t, len(g_s)), bool)
    if pair_pred and sum(len(x) for x in pair_pred):
        gt_hit = _greedy_match(np.concatenate(pair_pred), np.concatenate(pair_gt), np.concatenate(pair_iou),
                               p_group, p_s, p_e, grp_of_gt, g_s, g_e, thr, tp)
    matches = _matches_per_video(tp, rank_order, pvids, pcounts, gt_hit, g_flat, vid_ids, videos) \
        if keep_matches else None

    # ---- AP per class from cumulative TP counts ----
    cls_start = np.searchsorted(p_cls, np.arange(len(ann.classes)), side="left")
    cls_end = np.searchsorted(p_cls, np.arange(len(ann.classes)), side="right")
    ap = np.zeros((num_t, len(gt_classes)))
    per_class: dict[str, np.ndarray] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, c in enumerate(gt_classes):
        a, b = cls_start[c], cls_end[c]
        name = ann.classes[c]
        if b > a:
            tp_cum = np.cumsum(tp[:, a:b], axis=1, dtype=np.float64)
            fp_cum = np.cumsum(~tp[:, a:b], axis=1, dtype=np.float64)
            rec = tp_cum / npos[c]
            prec = tp_cum / (tp_cum + fp_cum)
            ap[:, j] = interpolated_ap(prec, rec)
            curves[name] = (prec, rec)
        else:
            curves[name] = (np.zeros((num_t, 0)), np.zeros((num_t, 0)))
        per_class[name] = ap[:, j].copy()
    mAP = ap.mean(axis=1) if len(gt_classes) else np.zeros(num_t)

    recall = None
    if recall_top_k:
        recall = _topk_recall(recall_top_k, thr, p_group, p_s, p_e, group_start, group_size, g_s, g_e,
                              grp_of_gt, g_cls, gt_classes, npos)

    return DetectionResult(tiou_thresholds=thr, mAP=mAP, average_mAP=float(mAP.mean()), per_class_AP=per_class,
                           subset=subset, num_videos=len(vid_ids), num_gt=len(g_cls), num_predictions=n_pred,
                           recall=recall, warnings=warns, pr_curves=curves, matches=matches)


def _overlap_clusters(group: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Cluster id of each interval: within a group, chains of overlapping (or touching)
    intervals. Exact: compares ranks of the times, never shifted floats."""
    n = len(group)
    _, rank = np.unique(np.concatenate([start, end]), return_inverse=True)
    r_start, r_end = rank[:n].astype(np.int64), rank[n:].astype(np.int64)
    m = int(rank.max()) + 2
    order = np.lexsort((r_start, group))
    g = group[order].astype(np.int64)
    reach = np.maximum.accumulate(g * m + r_end[order])  # segmented running max of ends
    brk = np.ones(n, bool)
    brk[1:] = (g[1:] != g[:-1]) | (g[1:] * m + r_start[order][1:] > reach[:-1])
    cluster = np.empty(n, np.int64)
    cluster[order] = np.cumsum(brk) - 1
    return cluster


def _greedy_match(pair_pred: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray, p_group: np.ndarray,
                  p_s: np.ndarray, p_e: np.ndarray, gt_group: np.ndarray, g_s: np.ndarray, g_e: np.ndarray,
                  thr: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """Greedy matching of every threshold at once; fills ``tp`` (T, N) in place and returns
    the (T, G) flags of the GT that were matched.

    pair_*: (P,) candidate pairs, predictions indexed in class-rank order. Predictions and
    GT of one (class, video) group that chain by temporal overlap form a cluster; clusters
    share no GT, so they are matched independently. Step k takes the k-th prediction of
    every cluster at once: a handful of array operations over their pairs."""
    live, pair_live = np.unique(pair_pred, return_inverse=True)  # live: ascending = rank order
    cand_gt = np.unique(pair_gt)
    cluster = _overlap_clusters(np.concatenate([p_group[live], gt_group[cand_gt]]),
                                np.concatenate([p_s[live], g_s[cand_gt]]),
                                np.concatenate([p_e[live], g_e[cand_gt]]))
    lg = cluster[:len(live)]
    by_group = np.argsort(lg, kind="stable")
    lg_sorted = lg[by_group]
    step_of_live = np.empty(len(live), np.int64)
    step_of_live[by_group] = np.arange(len(live)) - np.searchsorted(lg_sorted, lg_sorted, side="left")
    pair_step = step_of_live[pair_live]
    # pairs by step, then prediction, then tIoU descending, then GT file order
    order = np.lexsort((pair_gt, -pair_iou, pair_pred, pair_step))
    pair_pred, pair_gt, pair_iou, pair_step = pair_pred[order], pair_gt[order], pair_iou[order], pair_step[order]
    new_pred = np.ones(len(pair_pred), bool)
    new_pred[1:] = pair_pred[1:] != pair_pred[:-1]
    seg_start = np.maximum.accumulate(np.where(new_pred, np.arange(len(pair_pred)), 0))
    hits_thr = pair_iou[None, :] >= thr[:, None]  # (T, P)
    bounds = np.searchsorted(pair_step, np.arange(pair_step[-1] + 2))
    locked = np.zeros((len(thr), len(g_s)), bool)
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        gid = pair_gt[a:b]
        valid = hits_thr[:, a:b] & ~locked[:, gid]  # (T, m)
        before = np.cumsum(valid, axis=1) - valid  # valid pairs before each pair
        first = valid & (before == before[:, seg_start[a:b] - a])  # best free GT of each prediction
        t_i, j_i = np.nonzero(first)
        locked[t_i, gid[j_i]] = True
        tp[t_i, pair_pred[a:b][j_i]] = True
    return locked


def _topk_recall(top_k, thr, p_group, p_s, p_e, group_start, group_size, g_s, g_e, grp_of_gt, g_cls,
                 gt_classes, npos) -> dict[int, np.ndarray]:
    """Recall when keeping, per video and class, the k x #GT best-scored predictions
    (ActionFormer's Recall@kx), averaged over classes. Predictions arrive class-ranked."""
    inside = np.nonzero(p_group >= 0)[0]
    g = p_group[inside]
    by_group = np.argsort(g, kind="stable")
    gs = g[by_group]
    rank_in_group = np.empty(len(inside), np.int64)
    rank_in_group[by_group] = np.arange(len(inside)) - np.searchsorted(gs, gs, side="left")
    out: dict[int, np.ndarray] = {}
    for k in top_k:
        sel = inside[rank_in_group < int(k) * group_size[g]]
        best = np.full(len(g_s), -1.0)  # best tIoU reached by each GT
        for c0 in range(0, len(sel), _CHUNK):
            iou, gidx = _block_tiou(sel[c0:c0 + _CHUNK], p_group, p_s, p_e, group_start, group_size, g_s, g_e)
            ok = iou >= 0
            np.maximum.at(best, gidx[ok], iou[ok])
        covered = best[None, :] >= thr[:, None]  # (T, num GT)
        per_class = np.zeros((len(thr), len(npos)))
        for t in range(len(thr)):
            per_class[t] = np.bincount(g_cls, weights=covered[t], minlength=len(npos))
        out[int(k)] = (per_class[:, gt_classes] / npos[gt_classes]).mean(axis=1) if len(gt_classes) \
            else np.zeros(len(thr))
    return out
