"""``tad check-data``: every problem between an annotation file and a feature store, one
line each (thin layer over ``tad.datasets.data_check``). Exit 1 when there are errors."""
from __future__ import annotations

from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command(
    "check-data",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  tad check-data ann.json features.h5
  tad check-data ann.json features.h5 --config my_config.py --min-instances 10

\b
Errors (exit status 1): annotated videos missing from the store or failed at
extraction; segments of zero/negative length or outside the video; a store whose
time span disagrees with the annotated duration by more than one clip (drift);
with --config, features or classes that do not fit the model.
Warnings (exit status 0): stored videos without annotations; segments partly
outside the video or shorter than one feature step; classes with fewer than
--min-instances training instances; labels only in the test subset; with
--config, actions longer than the training window.""",
)
@click.argument("ann_file", metavar="ANN.json", type=click.Path(path_type=Path))
@click.argument("feature_store", metavar="FEATURES.h5", type=click.Path(path_type=Path))
@click.option("--config", "config", default=None,
              help="Training config: its subsets, max_seq_len, num_classes and in_channels are checked too.")
@click.option("--min-instances", default=5, show_default=True, type=int,
              help="Warn about classes with fewer training instances than this.")
@click.option("--quiet", is_flag=True, help="Only the summary line and errors.")
def check_data(ann_file: Path, feature_store: Path, config: str | None, min_instances: int, quiet: bool) -> None:
    """Check ANN.json against FEATURES.h5 and list every problem: file, video, what is wrong."""
    from tad.datasets.data_check import check_data as run

    kwargs = {}
    try:
        if min_instances < 1:
            raise TadInputError("--min-instances", f"must be >= 1, got {min_instances}")
        if config is not None:
            kwargs = _config_expectations(config)
        report = run(ann_file, feature_store, min_instances=min_instances, **kwargs)
    except (TadInputError, OSError) as exc:
        fail(exc)
    for problem in report.problems:
        if problem.level == "error" or not quiet:
            click.echo(problem.line())
    stats = report.stats
    steps = stats.get("steps_per_video")
    lengths = stats.get("action_steps")
    detail = ""
    if steps:
        detail += f"; video length {steps[0]}/{steps[1]}/{steps[2]} steps (min/median/max)"
    if lengths:
        detail += f"; action length {lengths[0]:.1f}/{lengths[1]:.1f}/{lengths[2]:.1f} steps"
    click.echo(f"{ann_file}: {stats['videos']} videos, {stats['segments']} segments, {stats['classes']} classes "
               f"(training: {', '.join(stats['train_subsets']) or '-'}; test: {', '.join(stats['test_subsets']) or '-'})"
               f"{detail}")
    click.echo(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    if report.errors:
        raise SystemExit(1)


def _config_expectations(config: str) -> dict:
    from tad.engine.runner import load_config

    cfg = load_config(config)
    model = cfg.get("model") or {}
    train = [cfg.train_subset] if cfg.get("train_subset") else None
    test = [s for s in dict.fromkeys([cfg.get("val_subset"), cfg.get("test_subset")]) if s] or None
    return dict(train_subsets=train, test_subsets=test, max_seq_len=cfg.get("max_seq_len"),
                num_classes=model.get("num_classes", cfg.get("num_classes")), in_channels=model.get("in_channels"))
