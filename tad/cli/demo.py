"""`tad demo`: the whole pipeline on a synthetic dataset, in a few minutes on a CPU."""
from __future__ import annotations

from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command(
    "demo",
    help="""Render a small synthetic dataset and run the whole pipeline on it.

    Writes N short H.264 videos (coloured shapes sliding, bouncing, spinning and
    flashing at random times over a cluttered moving background) with THUMOS-format
    annotations, then runs the real commands' code: feature extraction (tiny3d
    backbone, random init), training of the STPT detector (configs/stpt/demo_tiny3d.py),
    evaluation on the Test subset (mAP table, predictions JSON) and PNG timelines.
    Takes a few minutes on 2 CPU cores; nothing is downloaded.

    \b
    Examples:
      tad demo                          # 24 videos into ./tad_demo
      tad demo --workdir /tmp/demo --videos 12 --seed 1
      tad demo --stream                 # then stream one Test video through the causal detector
      tad demo --stream-only            # stream again, reusing the demo already in ./tad_demo
    \b
    Then look at:
      tad_demo/timelines/*.png          # ground truth vs detections
      tad_demo/predictions.json         # ActivityNet-style detections
      tad score tad_demo/predictions.json --annotations tad_demo/annotations.json --split test
    """,
)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("tad_demo"), show_default=True,
              help="Folder for everything the demo writes (a new or previous demo folder).")
@click.option("--videos", type=click.IntRange(min=4), default=24, show_default=True,
              help="Number of synthetic videos (40% are the Test subset).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the dataset and of training.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Override the demo config's number of training epochs.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Decoding worker processes during extraction.")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
              help="torch threads for extraction and training (0: torch's default). One is fastest for this "
                   "small model, especially when other jobs share the CPU.")
@click.option("--stream", "stream", is_flag=True,
              help="End by training the causal detector and streaming one Test video at real time "
                   "(`tad stream`), printing its events as they come.")
@click.option("--stream-only", "stream_only", is_flag=True,
              help="Only the streaming part, on the demo already in --workdir: reuse its videos, features "
                   "and trained causal detector (trained first if missing) and stream its first Test video.")
@click.option("--no-realtime", "no_realtime", is_flag=True,
              help="With --stream/--stream-only: read the video as fast as possible instead of at its frame rate.")
def demo(workdir: Path, videos: int, seed: int, epochs: int | None, workers: int, threads: int,
         stream: bool, stream_only: bool, no_realtime: bool) -> None:
    from tad.demo.pipeline import run_demo, stream_existing_demo

    try:
        if stream_only:
            import torch

            if threads:
                torch.set_num_threads(threads)
            stream_existing_demo(workdir, seed=seed, epochs=epochs, realtime=not no_realtime, echo=click.echo)
            return
        run_demo(workdir, videos=videos, seed=seed, epochs=epochs, workers=workers, threads=threads or None,
                 echo=click.echo, stream=stream, realtime=not no_realtime)
    except TadInputError as exc:
        fail(exc)
