"""`tad detect`: raw videos -> action segments (flags and output; the work is ``tad.apis.detect.run_detect``)."""
from __future__ import annotations

import click

from tad.apis.detect import run_detect
from tad.cli.errors import EXIT_PARTIAL, fail
from tad.errors import TadInputError


@click.command(
    "detect",
    help="""Detect actions in raw videos with a trained detector.

    Extracts features with the backbone settings recorded in the config's extract=dict(...)
    (in memory; --features-out also keeps them in an HDF5 store), runs the detector, and writes the segments
    of every video as ActivityNet-style JSON (video id = file path relative to the videos'
    common folder, without extension). Class names come from the checkpoint.

    \b
    The detector --checkpoint is read weights-only (code hidden in it never runs);
    --trust-checkpoint reads it as a pickle instead, for files you trust. Backbone
    checkpoints (--backbone-checkpoint: .pyth/.pth/.pt, Caffe2 .pkl) are pickle formats
    loaded as TRUSTED files that can run code: only use ones you trust.

    \b
    Exit status: 0 every video was processed; 3 some videos failed (listed as
    'path: reason') and the segments of the rest were written; 1 an error.

    \b
    Examples:
      tad detect match.mp4 --config thumos14_stpt_tada2d.py \\
          --checkpoint work_dirs/thumos14_stpt_tada2d/best_average_mAP_epoch_35.pth \\
          --backbone-checkpoint tada2d_r50_8x8.pyth -o preds.json
      tad detect videos/*.mp4 --config tiny_test.py --checkpoint run/epoch_2.pth --random-init
    """,
)
@click.argument("videos", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--config", "config", required=True, help="Config the detector was trained with.")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="Detector checkpoint (.pth).")
@click.option("--backbone-checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Backbone weights for feature extraction (loaded as a trusted file).")
@click.option("--random-init", is_flag=True, help="Extract with a randomly initialised backbone (tests/demo).")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="preds.json", show_default=True,
              help="Predictions JSON.")
@click.option("--features-out", type=click.Path(dir_okay=False), default=None,
              help="Keep the extracted features in this HDF5 store.")
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE", help="Override config keys (repeatable).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Clips per backbone batch.")
@click.option("--workers", type=int, default=2, show_default=True, help="Decoding processes.")
@click.option("--trust-checkpoint", is_flag=True,
              help="Read --checkpoint as a trusted pickle (can run code stored in it); default: weights only.")
@click.option("--classifier-scores", type=click.Path(dir_okay=False), default=None,
              help="Video classifier scores (CUHK JSON) to fuse with a class-agnostic model's segments.")
@click.option("--classifier-top-k", type=click.IntRange(min=1), default=None,
              help="Classes per segment in the fusion (default: the config's classifier_top_k, 2).")
def detect(videos, config, checkpoint, backbone_checkpoint, random_init, out, features_out, cfg_options, device,
           batch_size, workers, trust_checkpoint, classifier_scores, classifier_top_k):
    try:
        predictions, summary = run_detect(config, videos, checkpoint, backbone_checkpoint, random_init, out,
                                          features_out, cfg_options, device, batch_size, workers,
                                          trust_checkpoint=trust_checkpoint, classifier_scores=classifier_scores,
                                          classifier_top_k=classifier_top_k,
                                          warn=lambda note: click.echo(f"warning: {note}", err=True))
    except (TadInputError, FileNotFoundError) as exc:
        fail(exc)
    num = sum(len(v) for v in predictions.values())
    click.echo(f"{len(predictions)} videos, {num} segments -> {out}")
    if summary.failed:
        click.echo(f"{len(summary.failed)} of {len(videos)} videos failed (listed above as 'path: reason')", err=True)
        raise SystemExit(EXIT_PARTIAL)
