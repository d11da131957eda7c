"""Timeline PNGs of ground truth and predicted segments (what ``tad visualize`` and the demo draw).

``render_timelines`` writes one PNG per video (``out`` is the PNG itself for one video,
else a folder), with a thumbnail strip when the video file is found.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tad.errors import TadInputError

__all__ = ["render_timelines"]

VIDEO_EXTS = ("mp4", "avi", "mkv", "webm", "mov")


def _png_name(video_id: str) -> str:
    return video_id.replace("/", "__") + ".png"


def _find_video_file(video_dir: Path, video_id: str) -> Path | None:
    for ext in VIDEO_EXTS:
        for candidate in (video_dir / f"{video_id}.{ext}", video_dir / f"{video_id}.{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def render_timelines(predictions_path: Path, annotations_path: Path | None, video_ids: list[str], out: Path,
                     video_file: Path | None = None, video_dir: Path | None = None, top_k: int = 10,
                     tiou: float = 0.5, subset: str | None = None, warn=None) -> list[Path]:
    """Write one PNG per video; ``out`` is the PNG itself for one video, else a folder.

    With no ``video_ids``: every video that has predictions (or, with ``subset``,
    every annotated video of that subset). Returns the files written. ``warn(line)``
    reports a missing thumbnail video (default: a line on stderr).
    """
    if warn is None:
        def warn(line: str) -> None:
            print(line, file=sys.stderr)

    from tad.eval.annotations import load_annotations
    from tad.eval.results import load_predictions
    from tad.eval.visualize import plot_video_predictions

    ann = load_annotations(annotations_path) if annotations_path is not None else None
    classes = list(ann.classes) if ann is not None else []
    predictions = load_predictions(predictions_path)
    if not video_ids:
        if subset is not None and ann is not None:
            video_ids = sorted(ann.subset(subset))
        else:
            video_ids = sorted(predictions)
        if not video_ids:
            raise TadInputError(predictions_path, "no videos to draw (the file holds no predictions)")
    if video_file is not None and len(video_ids) > 1:
        raise TadInputError(video_file, "--video-file needs exactly one --video (use --video-dir for several)")
    single_png = len(video_ids) == 1 and out.suffix.lower() == ".png"
    if not single_png and out.suffix.lower() == ".png":
        raise TadInputError(out, f"{len(video_ids)} videos to draw: give a folder for -o, not a .png file")

    from tad.output_guard import refuse_output_over_inputs

    for vid in video_ids:  # before anything is written
        refuse_output_over_inputs({"-o": out if single_png else out / _png_name(vid)},
                                  {"PREDICTIONS": predictions_path, "--annotations": annotations_path,
                                   "--video-file": video_file})
    written = []
    for vid in video_ids:
        annotation = ann.videos.get(vid) if ann is not None else None
        if annotation is None and vid not in predictions:
            where = f"{predictions_path} or {annotations_path}" if annotations_path else str(predictions_path)
            raise TadInputError(where, f"video {vid!r} not found")
        frames_from = video_file
        if frames_from is None and video_dir is not None:
            frames_from = _find_video_file(video_dir, vid)
            if frames_from is None:
                warn(f"warning: {video_dir}: no video file for {vid!r}; drawing without thumbnails")
        target = out if single_png else out / _png_name(vid)
        plot_video_predictions(target, vid, classes, annotation, predictions.get(vid, []),
                               top_k=top_k, tiou=tiou, video_file=frames_from)
        written.append(target)
    return written
