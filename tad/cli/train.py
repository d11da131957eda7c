"""`tad train`: train a detector from a config with mmengine's Runner."""
from __future__ import annotations

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command(
    "train",
    help="""Train a detector from an mmengine config on cached features.

    CONFIG is a config file, or the name of a shipped config (configs/<method>/<dataset>_<features>.py:
    thumos14_i3d.py, thumos14_tada2d.py, thumos14_slowfast.py, activitynet13_tsp.py,
    activitynet13_tsp_multiclass.py, demo_tiny3d.py; old names such as thumos14_stpt_i3d.py
    still work). Checkpoints,
    text logs and TensorBoard logs go to the work dir (default work_dirs/<config name>);
    the best checkpoint by validation average mAP is kept as best_average_mAP_epoch_N.pth.
    Validation and checkpoints use the EMA weights; at the end, the exported checkpoint's EMA and raw
    weights are both scored on the validation set and it keeps whichever scored higher (printed).

    \b
    Examples:
      tad train thumos14_stpt_i3d.py --cfg-options ann_file=data/thumos14.json \\
          feature_store=data/i3d_features.h5
      tad train my_config.py --work-dir runs/exp1 --seed 1 --amp
      tad train my_config.py --work-dir runs/exp1 --resume     # after a crash or kill
      tad train my_config.py --cfg-options train_dataloader.batch_size=4 model.embed_dim=256
      torchrun --nproc_per_node 2 $(which tad) train my_config.py    # several processes/GPUs
    """,
)
@click.argument("config")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="Where checkpoints and logs go (default: work_dirs/<config name>).")
@click.option("--resume", is_flag=True, help="Continue from the newest complete checkpoint in the work dir.")
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE",
              help="Override config keys, e.g. ann_file=a.json model.embed_dim=256 (repeatable; "
                   "several may follow one flag).")
@click.option("--seed", type=int, default=None, help="Random seed (default: the config's randomness.seed).")
@click.option("--amp", is_flag=True, help="Mixed precision: fp16 with loss scaling on CUDA, bf16 autocast on CPU.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--launcher", type=click.Choice(["none", "pytorch", "slurm", "mpi"]), default="none",
              help="Distributed launcher ('pytorch' is picked automatically under torchrun).")
@click.argument("extra_options", nargs=-1, required=False, metavar="")
def train(config, work_dir, resume, cfg_options, seed, amp, device, launcher, extra_options):
    from tad.engine.runner import (build_runner, checkpoint_mismatch_error, find_best_checkpoint,
                                   input_error_from_worker, load_config)

    options = list(cfg_options) + list(extra_options)
    try:
        cfg = load_config(config, options)
        runner = build_runner(cfg, work_dir=work_dir, resume=resume, seed=seed, amp=amp,
                              launcher=launcher, device=device)
    except (TadInputError, FileNotFoundError) as exc:
        fail(exc)
    try:
        runner.train()
    except Exception as exc:  # bad data found mid-run (e.g. NaN features), maybe inside a worker
        error = input_error_from_worker(exc) or checkpoint_mismatch_error(exc, getattr(runner, "_load_from", None)
                                                                          or "checkpoint")
        if error is None:
            raise
        fail(error)
    from mmengine.dist import is_main_process

    if is_main_process():
        click.echo(f"work dir: {runner.work_dir}")
        try:
            best = find_best_checkpoint(runner.work_dir)
        except TadInputError:
            click.echo("best checkpoint: none saved")
            return
        score = runner.message_hub.get_info("best_score")
        note = f" (validation average mAP {100 * score:.2f}%)" if score is not None and "best_" in best.name else ""
        click.echo(f"best checkpoint: {best}{note}")
        selection = runner.message_hub.get_info("weight_selection")
        if selection:
            click.echo(f"exported weights: {selection['exported']} (validation {selection['metric']}: "
                       f"EMA {100 * selection['ema']:.2f}%, raw {100 * selection['raw']:.2f}%)")
