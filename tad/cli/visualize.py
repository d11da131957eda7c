"""`tad visualize`: timeline PNGs of ground truth and predicted segments."""
from __future__ import annotations

from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError

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
                     tiou: float = 0.5, subset: str | None = None) -> list[Path]:
    """Write one PNG per video; ``out`` is the PNG itself for one video, else a folder.

    With no ``video_ids``: every video that has predictions (or, with ``subset``,
    every annotated video of that subset). Returns the files written.
    """
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
                click.echo(f"warning: {video_dir}: no video file for {vid!r}; drawing without thumbnails", err=True)
        target = out if single_png else out / _png_name(vid)
        plot_video_predictions(target, vid, classes, annotation, predictions.get(vid, []),
                               top_k=top_k, tiou=tiou, video_file=frames_from)
        written.append(target)
    return written


@click.command(
    "visualize",
    help="""Draw ground truth and predicted segments of videos as PNG timelines.

    For each class: the ground-truth segments (grey, dashed outline when missed), then
    the top-k predictions with their scores, green when a true positive at --tiou
    and red when a false positive. --video-file (or --video-dir) adds a strip of frame
    thumbnails along the time axis. Without --annotations only predictions are drawn.

    \b
    Examples:
      tad visualize preds.json --annotations thumos14.json --video video_test_0000004 -o v4.png
      tad visualize preds.json --annotations ann.json --video v1 --video-file videos/v1.mp4 -o v1.png
      tad visualize preds.json --annotations ann.json --subset test --video-dir videos/ -o timelines/
      tad visualize detections.json -o timelines/       # every video in the file, no ground truth
    """,
)
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option("--annotations", "annotations", type=click.Path(path_type=Path), default=None,
              help="Annotation JSON (ActionFormer/THUMOS or ActivityNet format) for ground truth and class names.")
@click.option("--video", "videos", multiple=True, help="Video id to draw; repeat for several. Default: all videos.")
@click.option("--subset", default=None, help="With no --video: draw every annotated video of this subset (e.g. test).")
@click.option("--video-file", type=click.Path(path_type=Path), default=None,
              help="The video file of the (single) --video, for a thumbnail strip.")
@click.option("--video-dir", type=click.Path(path_type=Path), default=None,
              help="Folder holding <video id>.mp4/... files, for thumbnail strips.")
@click.option("--top-k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Predictions drawn per class (highest scores).")
@click.option("--tiou", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.5, show_default=True,
              help="tIoU at which a prediction counts as a true positive.")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Output PNG (one video) or folder (several videos).")
def visualize(predictions: Path, annotations: Path | None, videos: tuple[str, ...], subset: str | None,
              video_file: Path | None, video_dir: Path | None, top_k: int, tiou: float, out: Path) -> None:
    try:
        if video_file is not None and not video_file.is_file():
            raise TadInputError(video_file, "video file not found")
        if video_dir is not None and not video_dir.is_dir():
            raise TadInputError(video_dir, "not a folder")
        written = render_timelines(predictions, annotations, list(videos), out, video_file=video_file,
                                   video_dir=video_dir, top_k=top_k, tiou=tiou, subset=subset)
    except (TadInputError, OSError) as exc:
        fail(exc)
    for path in written:
        click.echo(f"wrote {path}")
