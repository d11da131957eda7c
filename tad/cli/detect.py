"""`tad detect`: raw videos -> action segments (extract features, then run a detector)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


def _root_dir(paths: list[Path]) -> Path:
    """The deepest folder holding every video; video ids are paths relative to it."""
    import os

    parents = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents))


def _class_names(cfg, ckpt_classes):
    if ckpt_classes:
        return list(ckpt_classes)
    if cfg.get("classes"):
        return list(cfg.classes)
    ann_file = cfg.get("ann_file")
    if ann_file and Path(ann_file).is_file():
        from tad.eval.annotations import load_annotations

        return list(load_annotations(ann_file).classes)
    raise TadInputError(cfg.filename or "config", "class names unknown: the checkpoint has none, and neither "
                        "cfg.classes nor ann_file gives them (set --cfg-options classes=\"['a','b']\")")


def run_detect(config, videos, checkpoint, backbone_checkpoint=None, random_init=False, out="preds.json",
               features_out=None, cfg_options=(), device=None, batch_size=8, workers=2, progress=True,
               classifier_scores=None, classifier_top_k=None):
    """The whole of `tad detect`; returns (predictions, extraction summary)."""
    from tad.engine.inference import build_test_dataset, fuse_classifier_scores, load_detector, predict_dataset
    from tad.engine.runner import load_config, select_device
    from tad.eval.results import write_predictions
    from tad.features.extract import ExtractOptions, extract_videos

    cfg = load_config(config, list(cfg_options))
    extract_cfg = cfg.get("extract")
    if not extract_cfg:
        raise TadInputError(cfg.filename or config, "the config has no extract=dict(...) (its features were not "
                            "made by `tad extract`), so `tad detect` cannot compute them")
    paths = [Path(v) for v in videos]
    for p in paths:
        if not p.is_file():
            raise TadInputError(p, "video not found")
    device = select_device(device)
    model, ckpt_classes = load_detector(cfg, checkpoint, device)
    classes = _class_names(cfg, ckpt_classes)

    with tempfile.TemporaryDirectory(prefix="tad_detect_") as tmp:
        store_path = Path(features_out) if features_out else Path(tmp) / "features.h5"
        options = dict(extract_cfg)
        options.update(checkpoint=backbone_checkpoint, random_init=random_init, device=device,
                       batch_size=batch_size, workers=workers)
        try:
            opts = ExtractOptions(**options)
        except TypeError as exc:
            raise TadInputError(cfg.filename or config, f"bad extract=dict(...) in the config: {exc}") from exc
        summary = extract_videos([str(p) for p in paths], str(_root_dir(paths)), str(store_path), opts,
                                 progress=progress)
        for path, reason in summary.failed.items():
            click.echo(f"warning: {path}: {reason}", err=True)
        if not Path(store_path).is_file():
            raise TadInputError(paths[0] if len(paths) == 1 else "videos", "no video could be read")
        dataset = build_test_dataset(cfg, subset=None, classes=classes, ann_file=None,
                                     feature_store=str(store_path))
        predictions = predict_dataset(model, dataset, dataset.classes, batch_size=1, num_workers=0,
                                      progress=progress)
    predictions, notes = fuse_classifier_scores(cfg, predictions, classifier_scores, classifier_top_k,
                                                bool(getattr(dataset, "class_agnostic", False)))
    for note in notes:
        click.echo(f"warning: {note}", err=True)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_predictions(out, predictions)
    return predictions, summary


@click.command(
    "detect",
    help="""Detect actions in raw videos with a trained detector.

    Extracts features with the backbone settings recorded in the config's extract=dict(...)
    (to a temporary store, or --features-out), runs the detector, and writes the segments
    of every video as ActivityNet-style JSON (video id = file path relative to the videos'
    common folder, without extension). Class names come from the checkpoint.

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
@click.option("--classifier-scores", type=click.Path(dir_okay=False), default=None,
              help="Video classifier scores (CUHK JSON) to fuse with a class-agnostic model's segments.")
@click.option("--classifier-top-k", type=click.IntRange(min=1), default=None,
              help="Classes per segment in the fusion (default: the config's classifier_top_k, 2).")
def detect(videos, config, checkpoint, backbone_checkpoint, random_init, out, features_out, cfg_options, device,
           batch_size, workers, classifier_scores, classifier_top_k):
    try:
        predictions, _ = run_detect(config, videos, checkpoint, backbone_checkpoint, random_init, out,
                                    features_out, cfg_options, device, batch_size, workers,
                                    classifier_scores=classifier_scores, classifier_top_k=classifier_top_k)
    except (TadInputError, FileNotFoundError) as exc:
        fail(exc)
    num = sum(len(v) for v in predictions.values())
    click.echo(f"{len(predictions)} videos, {num} segments -> {out}")
