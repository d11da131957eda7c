"""``tad score``: mAP of an ActivityNet-style predictions JSON against annotations."""
from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError

DEFAULT_TIOU = "0.3,0.4,0.5,0.6,0.7"


def parse_tiou(text: str) -> list[float]:
    """'0.3,0.5,0.7' or 'start:step:stop' (inclusive, e.g. '0.5:0.05:0.95')."""
    text = text.strip()
    try:
        if ":" in text:
            start, step, stop = (float(x) for x in text.split(":"))
            if step <= 0:
                raise ValueError
            n = int(round((stop - start) / step)) + 1
            values = [round(start + i * step, 10) for i in range(n) if start + i * step <= stop + 1e-9]
        else:
            values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected numbers like 0.3,0.5,0.7 or start:step:stop "
                                 f"like 0.3:0.1:0.7") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise click.BadParameter(f"{text!r}: thresholds must lie in (0, 1]")
    return values


def _example_path(name: str) -> Path:
    return Path(str(resources.files("tad") / "data" / name))


@click.command("score", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("predictions", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-a", "--annotations", type=click.Path(dir_okay=False, path_type=Path),
              help="Annotation JSON (ActionFormer/THUMOS14 or ActivityNet format).")
@click.option("-s", "--split", default="test", show_default=True,
              help="Subset to score, case-insensitive ('all' for every video).")
@click.option("--tiou", default=DEFAULT_TIOU, show_default=True,
              help="tIoU thresholds: a comma list or start:step:stop.")
@click.option("--metrics-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metrics JSON here (fractions in [0, 1]).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write precision-recall curves (one per tIoU threshold) to this PNG.")
@click.option("--per-class", is_flag=True, help="Also print AP per class.")
@click.option("--recall", "recall_k", default=None, metavar="K,K",
              help="Also report Recall@Kx (top K x #GT detections per video and class), e.g. 1,5.")
@click.option("--example", is_flag=True, help="Score the small example files shipped with tad.")
def score(predictions: Path | None, annotations: Path | None, split: str, tiou: str, metrics_out: Path | None,
          plot: Path | None, per_class: bool, recall_k: str | None, example: bool) -> None:
    """Score detections: mAP at each tIoU threshold and their average (ActivityNet protocol,
    identical to the ActivityNet/ActionFormer evaluators).

    PREDICTIONS is an ActivityNet results JSON:
    {"results": {video_id: [{"label": name, "score": s, "segment": [t0, t1]}]}} (seconds).

    \b
    Examples:
      tad score --example
      tad score preds.json --annotations thumos14.json --split test
      tad score preds.json -a thumos14.json --per-class --metrics-out metrics.json --plot pr.png
      tad score preds.json -a activity_net.v1-3.min.json --split validation --tiou 0.5:0.05:0.95
    """
    if example:
        predictions = predictions or _example_path("example_predictions.json")
        annotations = annotations or _example_path("example_annotations.json")
    if predictions is None:
        raise click.UsageError("missing PREDICTIONS (or use --example)")
    if annotations is None:
        raise click.UsageError("missing --annotations ANN.json")
    thresholds = parse_tiou(tiou)
    top_k = None
    if recall_k:
        try:
            top_k = [int(k) for k in recall_k.split(",") if k.strip()]
        except ValueError:
            raise click.BadParameter(f"{recall_k!r}: expected integers like 1,5", param_hint="--recall") from None
        if not top_k or min(top_k) < 1:
            raise click.BadParameter(f"{recall_k!r}: expected positive integers", param_hint="--recall")

    from tad.eval.annotations import load_annotations
    from tad.eval.detection import evaluate_detections
    from tad.eval.results import load_predictions

    from tad.output_guard import refuse_output_over_inputs

    try:
        refuse_output_over_inputs({"--metrics-out": metrics_out, "--plot": plot},
                                  {"PREDICTIONS": predictions, "--annotations": annotations})
        ann = load_annotations(annotations)
        if not ann.has_subset(split):
            raise TadInputError(annotations, f"no subset {split!r} (subsets: {', '.join(ann.subsets) or 'none'})")
        preds = load_predictions(predictions, classes=ann.classes)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = evaluate_detections(ann, preds, subset=split, tiou_thresholds=thresholds, recall_top_k=top_k)
    except (TadInputError, OSError) as exc:
        fail(exc)
    for w in result.warnings:
        click.echo(f"Warning: {w}", err=True)

    click.echo(f"{predictions}: {result.num_predictions} predictions, {result.num_videos} videos in split "
               f"{split!r}, {result.num_gt} GT instances, {len(result.per_class_AP)} classes")
    click.echo(result.format_table(per_class=per_class))
    try:
        if metrics_out is not None:
            metrics_out.parent.mkdir(parents=True, exist_ok=True)
            metrics_out.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
            click.echo(f"Metrics written to {metrics_out}")
        if plot is not None:
            from tad.eval.pr_curves import plot_pr_curves

            plot_pr_curves(result, plot)
            click.echo(f"Precision-recall curves written to {plot}")
    except OSError as exc:
        fail(exc)
