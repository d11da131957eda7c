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
def demo(workdir: Path, videos: int, seed: int, epochs: int | None, workers: int, threads: int,
         stream: bool) -> None:
    from tad.demo.pipeline import run_demo

    try:
        run_demo(workdir, videos=videos, seed=seed, epochs=epochs, workers=workers, threads=threads or None,
                 echo=click.echo, stream=stream)
    except TadInputError as exc:
        fail(exc)
