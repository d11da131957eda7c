"""Speed of tad.eval's detection mAP vs a plain loop implementation of the same protocol.

THUMOS14 test split (real annotations), ~11k synthetic predictions: jittered copies of
every GT (true positives of varying quality, near-duplicates) plus random false positives
of every class, scores continuous (no ties). Prints both times (best of --repeat runs;
wall clock and CPU time, the latter steadier on a shared machine), the speed-up and the largest |difference| of any mAP/AP value.

    python bench/map_speed.py [--annotations ../shared/data/thumos14/thumos14.json] [--num-preds 11000]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from map_reference import reference_map  # noqa: E402

from tad.eval.annotations import load_annotations  # noqa: E402
from tad.eval.detection import evaluate_detections  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def synthetic_predictions(ann, subset: str, num_preds: int, seed: int = 0) -> dict[str, list[dict]]:
    """About ``num_preds`` detections over the subset's videos."""
    rng = np.random.default_rng(seed)
    videos = ann.subset(subset)
    num_gt = sum(len(v) for v in videos.values())
    per_gt = 2  # jittered copies per GT
    fp_per_video = max(0, (num_preds - per_gt * num_gt) // max(len(videos), 1))
    preds: dict[str, list[dict]] = {}
    for vid, v in videos.items():
        dets = []
        for (s, e), label in zip(v.segments, v.labels):
            length = e - s
            for _ in range(per_gt):
                j = rng.normal(0.0, 0.25, 2) * length
                t0 = s + j[0]
                dets.append({"label": ann.classes[label], "score": float(rng.uniform(0.2, 1.0)),
                             "segment": [float(t0), float(max(t0, e + j[1]))]})
        for _ in range(fp_per_video):
            t0 = rng.uniform(0, v.duration)
            dets.append({"label": ann.classes[rng.integers(len(ann.classes))], "score": float(rng.uniform(0, 0.8)),
                         "segment": [float(t0), float(t0 + rng.exponential(4.0))]})
        preds[vid] = dets
    return preds


def best_time(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall time and best CPU time (process time: less sensitive to a busy machine)."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", default=str(REPO.parent / "shared/data/thumos14/thumos14.json"))
    parser.add_argument("--subset", default="test")
    parser.add_argument("--num-preds", type=int, default=11000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    ann = load_annotations(args.annotations)
    raw = json.loads(Path(args.annotations).read_text())
    preds = synthetic_predictions(ann, args.subset, args.num_preds)
    n = sum(len(d) for d in preds.values())

    t_ours, c_ours, ours = best_time(lambda: evaluate_detections(ann, preds, args.subset, THRESHOLDS), args.repeat)
    t_ref, c_ref, (ref_map, ref_avg, ref_cls) = best_time(
        lambda: reference_map(raw, preds, args.subset, THRESHOLDS), max(1, args.repeat // 2))
    diff = max(np.abs(ours.mAP - np.array(ref_map)).max(), abs(ours.average_mAP - ref_avg),
               max(np.abs(ours.per_class_AP[c] - np.array(ap)).max() for c, ap in ref_cls.items()))
    print(f"THUMOS14 {args.subset}: {len(preds)} videos, {ours.num_gt} GT, {n} predictions, "
          f"{len(THRESHOLDS)} tIoU thresholds")
    print(f"average mAP {100 * ours.average_mAP:.2f}%  (reference {100 * ref_avg:.2f}%)")
    print(f"                         wall (best)   CPU (best)")
    print(f"tad.eval (vectorised):   {t_ours * 1000:8.1f} ms  {c_ours * 1000:8.1f} ms")
    print(f"plain loop reference:    {t_ref * 1000:8.1f} ms  {c_ref * 1000:8.1f} ms")
    print(f"speed-up:                {t_ref / t_ours:8.1f}x    {c_ref / c_ours:8.1f}x")
    print(f"max |diff| of mAP/AP:    {diff:.3g}")


if __name__ == "__main__":
    main()
