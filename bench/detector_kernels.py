"""Detector kernels against their naive baselines, measured in the same run.

1. Local window attention (window 19, 4 heads, 512-d, the THUMOS setting): our blocked
   implementation (detectors/windowed_attention.py) against full T x T attention with a
   band mask, at growing T: time per call and the size of the score tensor.
2. Multi-class Gaussian Soft-NMS: the vectorised implementation (detectors/soft_nms.py)
   against a per-class Python loop (the textbook algorithm), on a THUMOS-like candidate
   set (20 classes, a few thousand candidates, 200 kept per class); and the post-processor's
   call with ``max_total=200`` (the per-video cap: exact early exit once the top 200 are final)
   against the full vectorised loop, checking that the first 200 results are identical.

Examples:
  python bench/detector_kernels.py
  python bench/detector_kernels.py --lengths 2304,9216 --threads 1
"""
from __future__ import annotations

import math
import time

import click
import numpy as np
import torch

from tad.detectors.soft_nms import soft_nms
from tad.detectors.windowed_attention import blocked_window_attention


def full_band_attention(q, k, v, mask, window):
    """Baseline: (T x T) scores with a band + key mask. q, k, v: (B, H, T, d)."""
    t = q.shape[2]
    pos = torch.arange(t)
    allowed = ((pos[:, None] - pos[None, :]).abs() <= window // 2)[None, None] & mask[:, None, None, :]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    attn = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1)
    return attn @ v, scores.numel()


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_soft_nms(segments, scores, labels, sigma, min_score, max_per_class):
    out = []
    for c in np.unique(labels):
        idx = np.nonzero((labels == c) & (scores >= min_score))[0]
        segs, cur = segments[idx].copy(), scores[idx].copy()
        alive = np.ones(len(idx), dtype=bool)
        for _ in range(min(len(idx), max_per_class)):
            if not alive.any():
                break
            best = int(np.argmax(np.where(alive, cur, -np.inf)))
            out.append((segs[best], cur[best], c))
            alive[best] = False
            for j in np.nonzero(alive)[0]:  # the textbook inner loop
                inter = max(0.0, min(segs[best, 1], segs[j, 1]) - max(segs[best, 0], segs[j, 0]))
                union = (segs[best, 1] - segs[best, 0]) + (segs[j, 1] - segs[j, 0]) - inter
                cur[j] *= math.exp(-(inter / union) ** 2 / sigma)
                if cur[j] < min_score:
                    alive[j] = False
    return out


@click.command()
@click.option("--lengths", default="1152,2304,4608,9216", show_default=True, help="Sequence lengths T.")
@click.option("--window", default=19, show_default=True)
@click.option("--embed-dim", default=512, show_default=True)
@click.option("--heads", default=4, show_default=True)
@click.option("--candidates", default=4000, show_default=True, help="Soft-NMS candidates per video.")
@click.option("--repeats", default=3, show_default=True)
@click.option("--threads", default=0, help="torch threads (0: torch's default).")
def main(lengths, window, embed_dim, heads, candidates, repeats, threads):
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    d = embed_dim // heads
    print(f"local attention: window {window}, {heads} heads x {d}, batch 1, threads {torch.get_num_threads()}")
    print(f"  {'T':>6} {'blocked s':>10} {'full s':>10} {'speed-up':>9} {'blocked scores':>15} "
          f"{'full scores':>12} {'memory ratio':>13}")
    with torch.no_grad():
        for t in [int(x) for x in lengths.split(",")]:
            q, k, v = (torch.randn(1, heads, t, d) for _ in range(3))
            mask = torch.ones(1, t, dtype=torch.bool)
            num_blocks = -(-t // window)
            blocked_scores = heads * num_blocks * window * (window + 2 * (window // 2))
            tb = best_time(lambda: blocked_window_attention(q[:, :, :, None], k[:, :, :, None], v[:, :, :, None],
                                                            mask, window), repeats)
            tf = best_time(lambda: full_band_attention(q, k, v, mask, window), repeats)
            full_scores = heads * t * t
            print(f"  {t:>6} {tb:>10.4f} {tf:>10.4f} {tf / tb:>8.1f}x {blocked_scores:>15,} {full_scores:>12,} "
                  f"{full_scores / blocked_scores:>12.1f}x")

    gen = np.random.default_rng(0)
    starts = gen.uniform(0, 300, candidates)
    segments = np.stack([starts, starts + gen.uniform(1, 30, candidates)], 1)
    scores = gen.uniform(0.001, 1, candidates)
    labels = gen.integers(0, 20, candidates)
    ts, tsc, tl = torch.from_numpy(segments), torch.from_numpy(scores), torch.from_numpy(labels)
    tv = best_time(lambda: soft_nms(ts, tsc, tl, 0.5, 0.001, 200), repeats)
    tn = best_time(lambda: naive_soft_nms(segments, scores, labels, 0.5, 0.001, 200), 1)
    kept = soft_nms(ts, tsc, tl, 0.5, 0.001, 200)
    ref = naive_soft_nms(segments, scores, labels, 0.5, 0.001, 200)
    same = len(ref) == len(kept[0]) and np.allclose(sorted(r[1] for r in ref), np.sort(kept[1].numpy()))
    print(f"soft-NMS: {candidates} candidates, 20 classes, sigma 0.5, 200 per class -> {len(kept[0])} kept "
          f"(same as the loop: {same})")
    print(f"  vectorised {tv:.4f} s, per-class loop {tn:.4f} s, speed-up {tn / tv:.1f}x")
    te = best_time(lambda: soft_nms(ts, tsc, tl, 0.5, 0.001, 200, max_total=200), repeats)
    capped = soft_nms(ts, tsc, tl, 0.5, 0.001, 200, max_total=200)
    exact = all(torch.equal(a[:200], b[:200]) for a, b in zip(capped, kept))
    print(f"  with the post-processor's cap (max_total=200, early exit): {te:.4f} s, speed-up {tv / te:.1f}x "
          f"over the full vectorised loop (first 200 identical: {exact})")


if __name__ == "__main__":
    main()
