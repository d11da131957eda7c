"""Precision-recall curves of a :class:`~tad.eval.detection.DetectionResult` as a PNG.

One curve per tIoU threshold: the interpolated precision (the VOC envelope AP integrates)
at 101 recall points, averaged over the classes that have GT. matplotlib is imported here
only, through its Agg canvas (no display, no pyplot state)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["mean_interpolated_precision", "plot_pr_curves"]

RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def mean_interpolated_precision(result, recall_points: np.ndarray = RECALL_POINTS) -> np.ndarray:
    """(T, R): for each threshold, the class-mean of max precision at recall >= r."""
    num_t = len(result.tiou_thresholds)
    curves = list(result.pr_curves.values())
    out = np.zeros((num_t, len(recall_points)))
    for prec, rec in curves:
        if prec.shape[1] == 0:
            continue
        envelope = np.maximum.accumulate(prec[:, ::-1], axis=1)[:, ::-1]  # (T, N)
        for t in range(num_t):
            idx = np.searchsorted(rec[t], recall_points, side="left")  # first rank reaching r
            ok = idx < rec.shape[1]
            out[t, ok] += envelope[t, idx[ok]]
    return out / max(len(curves), 1)


def plot_pr_curves(result, path: str | Path, width: int = 800, height: int = 600, dpi: int = 100,
                   title: str | None = None) -> Path:
    """Write the PNG (``width`` x ``height`` pixels) and return its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    precision = mean_interpolated_precision(result)
    from matplotlib import colormaps

    colors = colormaps["viridis"](np.linspace(0.0, 0.9, len(result.tiou_thresholds)))
    for t, (tiou, m) in enumerate(zip(result.tiou_thresholds, result.mAP)):
        ax.plot(RECALL_POINTS, precision[t], color=colors[t], lw=2,
                label=f"tIoU {tiou:.2f}  (mAP {100 * m:.1f}%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("interpolated precision (mean over classes)")
    ax.set_title(title or f"Precision-recall, {len(result.per_class_AP)} classes, "
                          f"average mAP {100 * result.average_mAP:.2f}%")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
    fig.subplots_adjust(left=0.09, right=0.97, bottom=0.09, top=0.93)
    fig.savefig(path, dpi=dpi, format="png")
    return path
