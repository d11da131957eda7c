"""`tad visualize`: timeline PNGs of ground truth and predicted segments."""
from __future__ import annotations

from pathlib import Path

import click

from tad.cli.errors import fail
from tad.apis.timelines import render_timelines
from tad.errors import TadInputError

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
                                   video_dir=video_dir, top_k=top_k, tiou=tiou, subset=subset,
                                   warn=lambda line: click.echo(line, err=True))
    except (TadInputError, OSError) as exc:
        fail(exc)
    for path in written:
        click.echo(f"wrote {path}")
