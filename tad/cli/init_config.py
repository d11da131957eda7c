"""``tad init-config``: a commented training config chosen from the data's statistics
(thin layer over ``tad.datasets.config_init``)."""
from __future__ import annotations

from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command(
    "init-config",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  tad init-config --annotations ann.json --features features.h5 -o my_config.py
  tad train my_config.py --work-dir runs/mine

\b
Chosen from the data (each choice is explained in a comment of the file):
num_classes; max_seq_len and the window strategy (whole videos when they are
short, random windows otherwise); pyramid depth and regression ranges from the
action lengths in feature steps; width, epochs, learning rate and EMA from the
number of training videos; multi-label targets when instances of different
classes overlap. Subsets: a subset named like 'test' is the test subset, the
others train (override with --train-subset / --test-subset).""",
)
@click.option("--annotations", "ann_file", required=True, type=click.Path(path_type=Path),
              help="Annotation JSON (from `tad convert-annotations`).")
@click.option("--features", "feature_store", required=True, type=click.Path(path_type=Path),
              help="HDF5 feature store (from `tad extract` / `tad import-features`).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Config file to write (.py).")
@click.option("--train-subset", default=None, help="Training subset (default: guessed from the subset names).")
@click.option("--test-subset", default=None, help="Test / validation subset (default: guessed).")
@click.option("--batch-size", default=2, show_default=True, type=int, help="Training batch size.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def init_config(ann_file: Path, feature_store: Path, output: Path, train_subset: str | None,
                test_subset: str | None, batch_size: int, overwrite: bool) -> None:
    """Write a training config chosen from the annotations and features."""
    from tad.datasets.config_init import choose_settings, data_statistics, render_config
    from tad.output_guard import refuse_output_over_inputs

    try:
        refuse_output_over_inputs({"-o": output}, {"--annotations": ann_file, "--features": feature_store})
        if batch_size < 1:
            raise TadInputError("--batch-size", f"must be >= 1, got {batch_size}")
        if output.suffix != ".py":
            raise TadInputError(output, "-o must name a .py config file")
        if output.exists() and not overwrite:
            raise TadInputError(output, "exists; pass --overwrite to replace it")
        stats = data_statistics(ann_file, feature_store, train_subset, test_subset)
        settings = choose_settings(stats, batch_size=batch_size)
        text = render_config(stats, settings, str(ann_file), str(feature_store))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    except (TadInputError, OSError) as exc:
        fail(exc)
    v = settings.values
    click.echo(f"{output}: {len(stats.classes)} classes, max_seq_len {v['max_seq_len']}, {v['num_levels']} levels "
               f"{v['regression_ranges']}, {v['max_epochs']} epochs"
               + (", multi-label targets" if v.get("multi_label") else ""))
    click.echo(f"next: tad train {output} --work-dir runs/{output.stem}")
