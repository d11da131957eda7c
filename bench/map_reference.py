"""Plain, loop-by-loop implementation of the ActivityNet detection mAP protocol.

The baseline of ``bench/map_speed.py`` and the oracle of ``tests/eval``: written from the
protocol's description (ActivityNet ``eval_detection.py`` / ActionFormer ``ANETdetection``),
sharing no code with ``tad.eval``. Reads the raw annotation JSON dict itself.
"""
from __future__ import annotations


def remove_duplicates(events, tol=1e-3):
    """events: list of (start, end, label) in file order."""
    kept = []
    for s, e, label in events:
        if e - s < tol:
            continue
        duplicate = False
        for ks, ke, kl in kept:
            if abs(s - ks) <= tol and abs(e - ke) <= tol and label == kl:
                duplicate = True
                break
        if not duplicate:
            kept.append((s, e, label))
    return kept


def tiou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (b[1] - b[0]) + (a[1] - a[0]) - inter
    return inter / union


def interpolated_ap(precision, recall):
    mprec = [0.0] + list(precision) + [0.0]
    mrec = [0.0] + list(recall) + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    ap = 0.0
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            ap += (mrec[i] - mrec[i - 1]) * mprec[i]
    return ap


def average_precision(gt, preds, thresholds):
    """gt: list of (video, start, end); preds: list of (video, score, start, end)."""
    if not preds:
        return [0.0] * len(thresholds)
    gt_by_video = {}
    for i, (v, s, e) in enumerate(gt):
        gt_by_video.setdefault(v, []).append(i)
    ranked = sorted(preds, key=lambda p: -p[1])
    aps = []
    for thr in thresholds:
        matched = set()
        tp_count = fp_count = 0
        precision, recall = [], []
        for v, score, s, e in ranked:
            best, best_iou = None, -1.0
            for gi in gt_by_video.get(v, []):
                if gi in matched:
                    continue
                o = tiou((s, e), gt[gi][1:])
                if o > best_iou:
                    best, best_iou = gi, o
            if best is not None and best_iou >= thr:
                matched.add(best)
                tp_count += 1
            else:
                fp_count += 1
            precision.append(tp_count / (tp_count + fp_count))
            recall.append(tp_count / len(gt))
        aps.append(interpolated_ap(precision, recall))
    return aps


def reference_map(database_json, predictions, subset, thresholds):
    """database_json: the parsed annotation file; predictions[vid] = [{"label", "score",
    "segment"}]. Returns (mAP list, average mAP, {class: AP list})."""
    gt_by_class = {}
    for vid, entry in database_json["database"].items():
        if subset is not None and entry["subset"].lower() != subset.lower():
            continue
        events = [(float(a["segment"][0]), float(a["segment"][1]), a["label"]) for a in entry.get("annotations", [])]
        for s, e, label in remove_duplicates(events):
            gt_by_class.setdefault(label, []).append((vid, s, e))
    preds_by_class = {}
    for vid, dets in predictions.items():
        for d in dets:
            preds_by_class.setdefault(d["label"], []).append((vid, d["score"], d["segment"][0], d["segment"][1]))
    per_class = {c: average_precision(gt_by_class[c], preds_by_class.get(c, []), thresholds)
                 for c in sorted(gt_by_class)}
    mAP = [sum(ap[t] for ap in per_class.values()) / len(per_class) for t in range(len(thresholds))]
    return mAP, sum(mAP) / len(mAP), per_class
