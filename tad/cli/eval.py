"""`tad eval`: run a trained detector on a split, write predictions, print mAP."""
from __future__ import annotations

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command(
    "eval",
    help="""Evaluate a checkpoint: predict every video of a split, write the predictions as
    ActivityNet-style JSON, print the mAP table (tIoU 0.3:0.1:0.7 and the average).

    CONFIG is a config file or the name of a shipped config; CHECKPOINT a .pth written by
    `tad train` (its weights are the EMA weights). --split test/val/train selects the
    config's test_subset/val_subset/train_subset; any other value is used as a subset name.

    \b
    Examples:
      tad eval thumos14_stpt_i3d.py work_dirs/thumos14_stpt_i3d/best_average_mAP_epoch_35.pth
      tad eval my_config.py run/epoch_10.pth --out preds.json --metrics-out metrics.json
      tad eval my_config.py run/best.pth --cfg-options feature_store=other_features.h5

    \b
    CHECKPOINT is read weights-only: a checkpoint that needs more than tensors, numpy
    values and mmengine's log buffers is refused, so code hidden in it never runs.
    --trust-checkpoint reads it as a pickle instead (it can run code): only for files
    you trust. --out and --metrics-out may not be one of the inputs.
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
@click.option("--trust-checkpoint", is_flag=True,
              help="Read CHECKPOINT as a trusted pickle (can run code stored in it); default: weights only.")
@click.argument("extra_options", nargs=-1, required=False, metavar="")
def eval_(config, checkpoint, split, out, metrics_out, cfg_options, device, trust_checkpoint, extra_options):
    from tad.engine.inference import run_inference
    from tad.engine.runner import input_error_from_worker, load_config
    from tad.output_guard import refuse_output_over_inputs

    try:
        cfg = load_config(config, list(cfg_options) + list(extra_options))
        dataset = (cfg.get("test_dataloader") or {}).get("dataset") or {}
        refuse_output_over_inputs(
            {"--out": out, "--metrics-out": metrics_out},
            {"CONFIG": cfg.filename, "CHECKPOINT": checkpoint,
             "ann_file": [dataset.get("ann_file"), cfg.get("ann_file")],
             "feature_store": [dataset.get("feature_store"), cfg.get("feature_store")]})
        predictions, result = run_inference(cfg, checkpoint, split=split, out=out, metrics_out=metrics_out,
                                            device=device, trust_checkpoint=trust_checkpoint)
    except (TadInputError, FileNotFoundError) as exc:
        fail(exc)
    except RuntimeError as exc:  # a DataLoader worker's TadInputError arrives wrapped
        error = input_error_from_worker(exc)
        if error is None:
            raise
        fail(error)
    num = sum(len(v) for v in predictions.values())
    click.echo(f"{len(predictions)} videos, {num} segments -> {out}")
    click.echo(result.format_table())
    if metrics_out:
        click.echo(f"metrics -> {metrics_out}")
