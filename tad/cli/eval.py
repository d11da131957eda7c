"""`tad eval`: run a trained detector on a split, write predictions, print mAP."""
from __future__ import annotations

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command(
    "eval",
    help="""Evaluate a checkpoint: predict every video of a split, write the predictions as
    ActivityNet-style JSON, print the mAP table at the tIoU thresholds of the config's
    test_evaluator (its dataset's protocol: THUMOS14 0.3:0.1:0.7, ActivityNet 0.5:0.05:0.95)
    and their average.

    A class-agnostic model (ActivityNet recipe) is fused with a video classifier's scores
    (--classifier-scores, CUHK cuhk_val_simp_share.json format): each segment is paired with
    the video's top-k classes, scored segment x class. Without them it is scored
    class-agnostically.

    CONFIG is a config file or the name of a shipped config; CHECKPOINT a .pth written by
    `tad train` (its weights are the EMA weights). --split test/val/train selects the
    config's test_subset/val_subset/train_subset; any other value is used as a subset name.

    \b
    Examples:
      tad eval thumos14_stpt_i3d.py work_dirs/thumos14_stpt_i3d/best_average_mAP_epoch_35.pth
      tad eval my_config.py run/epoch_10.pth --out preds.json --metrics-out metrics.json
      tad eval my_config.py run/best.pth --cfg-options feature_store=other_features.h5
      tad eval activitynet13_tsp.py run/best.pth --classifier-scores cuhk_val_simp_share.json
    """,
)
@click.argument("config")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--split", default="test", show_default=True, help="test, val, train or a subset name.")
@click.option("--out", type=click.Path(dir_okay=False), default="preds.json", show_default=True,
              help="Predictions JSON (ActivityNet format).")
@click.option("--metrics-out", type=click.Path(dir_okay=False), default=None, help="Metrics JSON.")
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE", help="Override config keys (repeatable).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--classifier-scores", type=click.Path(dir_okay=False), default=None,
              help="Video classifier scores (CUHK JSON) to fuse with a class-agnostic model's segments.")
@click.option("--classifier-top-k", type=click.IntRange(min=1), default=None,
              help="Classes per segment in the fusion (default: the config's classifier_top_k, 2).")
@click.argument("extra_options", nargs=-1, required=False, metavar="")
def eval_(config, checkpoint, split, out, metrics_out, cfg_options, device, classifier_scores, classifier_top_k,
          extra_options):
    from tad.engine.inference import run_inference
    from tad.engine.runner import input_error_from_worker, load_config

    try:
        cfg = load_config(config, list(cfg_options) + list(extra_options))
        predictions, result = run_inference(cfg, checkpoint, split=split, out=out, metrics_out=metrics_out,
                                            device=device, classifier_scores=classifier_scores,
                                            classifier_top_k=classifier_top_k)
    except (TadInputError, FileNotFoundError) as exc:
        fail(exc)
    except RuntimeError as exc:  # a DataLoader worker's TadInputError arrives wrapped
        error = input_error_from_worker(exc)
        if error is None:
            raise
        fail(error)
    num = sum(len(v) for v in predictions.values())
    for note in result.warnings:
        click.echo(f"warning: {note}", err=True)
    click.echo(f"{len(predictions)} videos, {num} segments -> {out}")
    click.echo(result.format_table())
    if metrics_out:
        click.echo(f"metrics -> {metrics_out}")
