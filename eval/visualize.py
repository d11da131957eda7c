"""Pictures of detection results, drawn from the scorer's own numbers so that a picture
and a score can never disagree.

* **Precision-recall curves** (:func:`plot_pr_curves`) of a
  :class:`~tad.eval.detection.DetectionResult`: one curve per tIoU threshold, the
  interpolated precision (the VOC envelope AP integrates) at 101 recall points, averaged over
  the classes that have GT.
* **Timelines** of one video (:func:`plot_timeline`, :func:`plot_video_predictions`): for
  every class with ground truth or predictions, a lane shows the ground-truth segments
  (grey; dashed outline where no prediction matched them) and, below, the class's top-k
  predictions packed into non-overlapping rows, green when they are true positives at the
  chosen tIoU and red when not, with their scores printed. An optional strip of frame
  thumbnails (decoded with decord) runs along the same time axis.

True/false positives of a timeline are not recomputed here: :func:`match_predictions` runs
``tad.eval.detection.evaluate_detections`` with ``keep_matches=True`` on the video, so the
colours are the matching the APs are computed from (same GT filtering, ranking and ties).

matplotlib is imported only when drawing, through its Agg backend.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tad.errors import TadInputError
from tad.eval.annotations import AnnotationSet, VideoAnnotation
from tad.eval.detection import VideoMatches, evaluate_detections

__all__ = ["SegmentSet", "match_predictions", "plot_timeline", "plot_video_predictions", "png_size",
           "mean_interpolated_precision", "plot_pr_curves", "RECALL_POINTS", "GT_COLOR", "TP_COLOR", "FP_COLOR"]


# =========================================================================== precision-recall curves
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


# =========================================================================== timelines
GT_COLOR = "#555555"
TP_COLOR = "#1a9850"
FP_COLOR = "#d73027"
ROW_INCHES = 0.24  # height of one lane row
THUMB_INCHES = 0.95  # height of the thumbnail strip


@dataclass
class SegmentSet:
    """Segments of one video: (N, 2) seconds, (N,) class ids, (N,) scores (None for ground truth)."""

    segments: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None

    @classmethod
    def empty(cls, with_scores: bool = False) -> "SegmentSet":
        return cls(np.zeros((0, 2)), np.zeros((0,), np.int64), np.zeros((0,)) if with_scores else None)

    def __post_init__(self) -> None:
        self.segments = np.asarray(self.segments, dtype=np.float64).reshape(-1, 2)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)


def match_predictions(gt: SegmentSet, pred: SegmentSet, tiou: float) -> tuple[np.ndarray, np.ndarray]:
    """The scoring protocol's matching on one video (``tad.eval.detection.evaluate_detections``
    with ``keep_matches``). Returns (is_tp (P,) bool, gt_matched (G,) bool)."""
    result = _match_one_video(gt, pred, [tiou])
    return result.is_tp[0], result.gt_matched[0]


def _match_one_video(gt: SegmentSet, pred: SegmentSet, thresholds: Sequence[float]) -> VideoMatches:
    num_classes = int(max([0] + gt.labels.tolist() + pred.labels.tolist())) + 1
    classes = [str(k) for k in range(num_classes)]
    video = VideoAnnotation("video", "all", float(max([1.0] + gt.segments.ravel().tolist())), None,
                            gt.segments.copy(), gt.labels.copy())
    scores = pred.scores if pred.scores is not None else np.zeros(len(pred.labels))
    dets = [dict(label=int(k), score=float(s), segment=[float(a), float(b)])
            for (a, b), k, s in zip(pred.segments, pred.labels, scores)]
    result = evaluate_detections(AnnotationSet(classes, {"video": video}), {"video": dets}, subset=None,
                                 tiou_thresholds=thresholds, keep_matches=True)
    return result.matches["video"]


def _pack_rows(segments: np.ndarray, min_gap: float) -> list[int]:
    """Row index per segment so that segments in one row do not overlap (greedy, input order)."""
    row_ends: list[float] = []
    rows = []
    for t0, t1 in segments:
        for r, end in enumerate(row_ends):
            if t0 >= end + min_gap:
                row_ends[r] = t1
                rows.append(r)
                break
        else:
            row_ends.append(t1)
            rows.append(len(row_ends) - 1)
    return rows


def _decode_thumbnails(video_file: Path, times: np.ndarray, height_px: int) -> list[np.ndarray]:
    """Frames showing at ``times`` seconds, resized to ``height_px`` rows by decord."""
    try:
        import decord

        probe = decord.VideoReader(str(video_file), num_threads=1)
        h, w = probe[0].shape[:2]
        width_px = max(2, int(round(w * height_px / max(h, 1))) // 2 * 2)
        reader = decord.VideoReader(str(video_file), width=width_px, height=height_px, num_threads=1)
        fps = reader.get_avg_fps() or 25.0
        idx = np.clip(np.round(times * fps).astype(np.int64), 0, len(reader) - 1)
        return list(reader.get_batch(idx.tolist()).asnumpy())
    except FileNotFoundError:
        raise TadInputError(video_file, "video file not found") from None
    except Exception as exc:  # decord raises its own DECORDError and RuntimeErrors
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TadInputError(video_file, f"cannot decode video for thumbnails: {problem}") from None


def plot_timeline(
    out: str | Path,
    *,
    video_id: str,
    duration: float,
    classes: Sequence[str],
    gt: SegmentSet | None = None,
    pred: SegmentSet | None = None,
    top_k: int = 10,
    tiou: float = 0.5,
    video_file: str | Path | None = None,
    width_inches: float = 12.0,
    dpi: int = 100,
) -> tuple[int, int]:
    """Draw one video's timeline to ``out`` (PNG). Returns the image size (width, height) in pixels.

    ``classes`` names class ids; ``top_k`` predictions per class are drawn (by score).
    Works with no ground truth, no predictions, or neither.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    gt = gt if gt is not None else SegmentSet.empty()
    pred = pred if pred is not None else SegmentSet.empty(with_scores=True)
    scores = pred.scores if pred.scores is not None else np.ones(len(pred.labels))
    duration = float(duration) if duration and duration > 0 else float(
        max([1.0] + list(gt.segments.ravel()) + list(pred.segments.ravel())))
    is_tp, gt_matched = match_predictions(gt, SegmentSet(pred.segments, pred.labels, scores), tiou)

    # Lanes: one per class with GT or predictions, in class-id order.
    lane_classes = sorted(set(gt.labels.tolist()) | set(pred.labels.tolist()))
    min_gap = duration * 0.035  # room for the score printed right of a bar
    lanes = []  # (class id, GT indices, [(pred index, row)], number of prediction rows)
    for cls in lane_classes:
        gt_idx = np.flatnonzero(gt.labels == cls)
        p_idx = np.flatnonzero(pred.labels == cls)
        p_idx = p_idx[np.argsort(-scores[p_idx], kind="stable")][:top_k]
        rows = _pack_rows(pred.segments[p_idx], min_gap) if len(p_idx) else []
        lanes.append((cls, gt_idx, list(zip(p_idx.tolist(), rows)), max(rows, default=-1) + 1))
    total_rows = sum(1 + n for *_, n in lanes) or 2
    top_score = max(float(scores.max()), 1e-6) if len(scores) else 1.0

    thumbs_h = THUMB_INCHES if video_file is not None else 0.0
    height_inches = 1.25 + thumbs_h + ROW_INCHES * total_rows + 0.1 * len(lanes)
    fig = plt.figure(figsize=(width_inches, height_inches), dpi=dpi)
    left, right = 1.6 / width_inches, 1 - 0.25 / width_inches
    bottom = 0.55 / height_inches
    top = 1 - 0.55 / height_inches
    lanes_top = top - (thumbs_h + 0.08) / height_inches if thumbs_h else top
    ax = fig.add_axes((left, bottom, right - left, lanes_top - bottom))

    def class_name(cls: int) -> str:
        return classes[cls] if 0 <= cls < len(classes) else f"class {cls}"

    y = 0.0  # rows counted downward from the top
    yticks, yticklabels = [], []
    for lane_no, (cls, gt_idx, placed, n_rows) in enumerate(lanes):
        lane_rows = 1 + n_rows
        if lane_no % 2 == 0:
            ax.axhspan(-(y + lane_rows + 0.05), -(y - 0.05), color="#f2f2f2", zorder=0)
        # Ground-truth row.
        for g in gt_idx:
            t0, t1 = gt.segments[g]
            matched = gt_matched[g]
            ax.add_patch(Rectangle((t0, -(y + 0.85)), t1 - t0, 0.7, facecolor=GT_COLOR, alpha=0.85 if matched else 0.45,
                                   edgecolor="black", linewidth=0.8, linestyle="-" if matched else "--", zorder=2))
            if n_rows:  # faint guide of the GT extent behind this class's prediction rows
                ax.add_patch(Rectangle((t0, -(y + 1 + n_rows)), t1 - t0, n_rows, facecolor=GT_COLOR, alpha=0.08,
                                       edgecolor="none", zorder=1))
        yticks.append(-(y + 0.5))
        yticklabels.append(f"{class_name(cls)}  GT")
        # Prediction rows.
        for p, row in placed:
            t0, t1 = pred.segments[p]
            ry = y + 1 + row
            color = TP_COLOR if is_tp[p] else FP_COLOR
            alpha = 0.25 + 0.75 * float(np.clip(scores[p] / top_score, 0, 1))  # relative to the video's best
            ax.add_patch(Rectangle((t0, -(ry + 0.85)), max(t1 - t0, duration * 0.002), 0.7, facecolor=color,
                                   alpha=alpha, edgecolor=color, linewidth=0.6, zorder=2))
            near_end = t1 > duration * 0.96  # no room on the right: print the score left of the bar
            ax.text(t0 - duration * 0.003 if near_end else t1 + duration * 0.003, -(ry + 0.5), f"{scores[p]:.2f}",
                    va="center", ha="right" if near_end else "left", fontsize=7, color="#222222", zorder=3,
                    clip_on=True)
        for row in range(n_rows):
            yticks.append(-(y + 1 + row + 0.5))
            yticklabels.append("pred" if row == 0 else "")
        y += lane_rows
        if lane_no < len(lanes) - 1:
            ax.axhline(-y, color="#bbbbbb", linewidth=0.6, zorder=1)

    ax.set_xlim(0, duration)
    ax.set_ylim(-max(y, 2.0), 0)
    ax.set_yticks(yticks)
    ax.set_yticklabels(yticklabels, fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", color="#dddddd", linewidth=0.5, zorder=0)
    if not lanes:
        ax.text(duration / 2, -1.0, "no ground truth and no predictions for this video", ha="center", va="center",
                fontsize=10, color="#666666")
    elif len(pred.labels) == 0:
        ax.text(duration / 2, -y / 2, "no predictions", ha="center", va="center", fontsize=10, color="#999999")

    n_tp, n_gt, n_shown = int(is_tp.sum()), len(gt.labels), sum(len(pl) for _, _, pl, _ in lanes)
    title = (f"{video_id}   duration {duration:.1f} s   GT {n_gt}   predictions shown {n_shown} of "
             f"{len(pred.labels)} (top {top_k}/class)   TP@tIoU {tiou:g}: {n_tp}")
    fig.suptitle(title, fontsize=9, x=left, ha="left", y=1 - 0.12 / height_inches, va="top")
    shown_pred = [p for _, _, placed, _ in lanes for p, _ in placed]
    handles = []  # legend entries only for what the picture shows
    if gt_matched.any():
        handles.append(Patch(facecolor=GT_COLOR, edgecolor="black", label="ground truth (matched)"))
    if (~gt_matched).any():
        handles.append(Patch(facecolor=GT_COLOR, alpha=0.45, edgecolor="black", linestyle="--", label="missed GT"))
    if is_tp[shown_pred].any():
        handles.append(Patch(facecolor=TP_COLOR, label=f"TP (tIoU >= {tiou:g})"))
    if (~is_tp[shown_pred]).any():
        handles.append(Patch(facecolor=FP_COLOR, label="FP"))
    if handles:
        fig.legend(handles=handles, loc="lower right", ncol=len(handles), fontsize=7, frameon=False,
                   bbox_to_anchor=(right, 0.0))

    if video_file is not None:
        strip = fig.add_axes((left, top - thumbs_h / height_inches, right - left, thumbs_h / height_inches))
        strip_px_h = int(thumbs_h * dpi)
        strip_px_w = (right - left) * width_inches * dpi
        frames = _decode_thumbnails(Path(video_file), np.array([duration / 2]), strip_px_h)
        aspect = frames[0].shape[1] / frames[0].shape[0]
        count = max(1, int(strip_px_w // (strip_px_h * aspect)))
        step = duration / count
        times = (np.arange(count) + 0.5) * step
        frames = _decode_thumbnails(Path(video_file), times, strip_px_h)
        for t, frame in zip(times, frames):
            strip.imshow(frame, extent=(t - step / 2, t + step / 2, 0, 1), aspect="auto", interpolation="bilinear")
        strip.set_xlim(0, duration)
        strip.set_ylim(0, 1)
        strip.set_xticks([])
        strip.set_yticks([])
        strip.set_ylabel("frames", fontsize=8, rotation=0, ha="right", va="center")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    size = (int(round(width_inches * dpi)), int(round(height_inches * dpi)))
    plt.close(fig)
    return size


def png_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; TadInputError if the file is not a PNG."""
    data = Path(path).read_bytes()[:24]
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise TadInputError(path, "not a PNG file")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def plot_video_predictions(
    out: str | Path,
    video_id: str,
    classes: Sequence[str],
    annotation=None,
    predictions: Sequence[dict] | None = None,
    duration: float | None = None,
    **kwargs,
) -> tuple[int, int]:
    """:func:`plot_timeline` from the C1 objects: a ``VideoAnnotation`` (or None) and the
    video's ActivityNet-style prediction dicts (``label``/``score``/``segment``).

    Labels missing from ``classes`` get lanes of their own. ``duration`` defaults to the
    annotation's, else to the end of the last segment.
    """
    names = list(classes)
    index = {name: i for i, name in enumerate(names)}
    preds = list(predictions or [])
    for p in preds:
        if p["label"] not in index:
            index[p["label"]] = len(names)
            names.append(p["label"])
    pred = SegmentSet(
        [p["segment"] for p in preds] if preds else np.zeros((0, 2)),
        [index[p["label"]] for p in preds],
        [float(p["score"]) for p in preds],
    )
    gt = SegmentSet(annotation.segments, annotation.labels) if annotation is not None else SegmentSet.empty()
    if duration is None and annotation is not None and annotation.duration:
        duration = float(annotation.duration)
    return plot_timeline(out, video_id=video_id, duration=duration or 0.0, classes=names, gt=gt, pred=pred, **kwargs)
