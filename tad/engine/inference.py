"""Inference with a trained detector: predictions JSON and scores (contract C6).

``run_inference`` builds the model and the test data from a config, loads a checkpoint
(its ``state_dict`` holds the EMA weights when training used the EMA hook: mmengine
swaps them in when saving), predicts every video, writes ActivityNet-style JSON with
``tad.eval.results.write_predictions`` and scores it with
``tad.eval.detection.evaluate_detections`` at the tIoU thresholds of the config's
``test_evaluator``. A class-agnostic model's segments are first fused with an external
video classifier's scores (``tad.eval.classifier_fusion``) when a scores file is given.

Class names come from the checkpoint (``meta.dataset_meta.classes``, saved by the
Runner), else from ``cfg.classes``, else from the annotation file, so a model's label
``i`` always means the class it was trained on.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from tad.engine.runner import select_device
from tad.errors import TadInputError
from tad.registry import DATASETS, MODELS

_UNSET = object()

__all__ = ["run_inference", "load_detector", "build_test_dataset", "predict_dataset", "resolve_subset",
           "fuse_classifier_scores"]


def resolve_subset(cfg, split: str) -> str:
    """'test' / 'val' / 'train' -> the config's subset names; anything else is used as is."""
    aliases = {"test": "test_subset", "val": "val_subset", "train": "train_subset"}
    key = aliases.get(split.lower())
    if key is not None and cfg.get(key):
        return str(cfg[key])
    return split


def load_detector(cfg, checkpoint: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, list | None]:
    """Build ``cfg.model``, load ``checkpoint`` strictly; returns (model in eval mode, class names or None)."""
    from tad.compat.mmengine_fixes import load_trusted_checkpoint

    path = Path(checkpoint)
    if not path.is_file():
        raise TadInputError(path, "checkpoint not found")
    try:
        ckpt = load_trusted_checkpoint(str(path), map_location="cpu")  # our own run's output
    except Exception as exc:
        raise TadInputError(path, f"cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise TadInputError(path, "not a model checkpoint (no state_dict)")
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    model = MODELS.build(cfg.model)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        sizes = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise TadInputError(path, f"checkpoint does not match the config's model: {len(sizes)} shape mismatches "
                            f"({sizes[0] if sizes else exc})") from exc
    mismatched = [f"missing {k}" for k in result.missing_keys] + [f"unexpected {k}" for k in result.unexpected_keys]
    if mismatched:
        raise TadInputError(path, f"checkpoint does not match the config's model: {len(mismatched)} key problems "
                            f"({', '.join(mismatched[:3])}{', ...' if len(mismatched) > 3 else ''})")
    meta = ckpt.get("meta") or {}
    classes = (meta.get("dataset_meta") or {}).get("classes")
    model.to(device).eval()
    return model, (list(classes) if classes else None)


def build_test_dataset(cfg, subset: str | None, classes: Sequence[str] | None = None,
                       ann_file: str | None | object = _UNSET, feature_store: str | None = None,
                       video_ids: Sequence[str] | None = None):
    """The config's test dataset (whole videos) for ``subset``; ``ann_file=None`` = unannotated."""
    dataset_cfg = dict(cfg.test_dataloader.dataset)
    dataset_cfg.update(training=False, subset=subset)
    if ann_file is not _UNSET:
        dataset_cfg["ann_file"] = ann_file
    if feature_store is not None:
        dataset_cfg["feature_store"] = feature_store
    if classes is not None:
        dataset_cfg["classes"] = list(classes)
    if video_ids is not None:
        dataset_cfg["video_ids"] = list(video_ids)
    for key in ("ann_file", "feature_store"):
        value = dataset_cfg.get(key)
        if value is not None and not Path(value).is_file():
            raise TadInputError(value, f"{key} not found (set it with --cfg-options {key}=PATH)")
    if dataset_cfg.get("max_seq_len") is None:
        dataset_cfg.pop("max_seq_len", None)
    return DATASETS.build(dataset_cfg)


@torch.no_grad()
def predict_dataset(model: torch.nn.Module, dataset, classes: Sequence[str], batch_size: int = 1,
                    num_workers: int = 0, progress: bool = True) -> dict[str, list[dict]]:
    """Run ``model`` (mode 'predict') over ``dataset``; ActivityNet-style results per video."""
    from tad.datasets.collate import tad_collate

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=tad_collate)
    results: dict[str, list[dict]] = {}
    model.eval()
    for batch in tqdm(loader, desc="inference", unit="batch", disable=not progress, leave=False):
        for out in model.test_step(batch):
            order = torch.argsort(out["scores"].float().cpu(), descending=True)
            segments = out["segments"].float().cpu()[order].tolist()
            scores = out["scores"].float().cpu()[order].tolist()
            labels = out["labels"].cpu()[order].tolist()
            results[out["video_id"]] = [
                dict(label=classes[label], score=float(score), segment=[float(seg[0]), float(seg[1])])
                for seg, score, label in zip(segments, scores, labels)]
    return results


def _tiou_thresholds(cfg) -> list[float]:
    """The config's test_evaluator thresholds (its dataset's protocol), else tad.eval's default."""
    from tad.eval.detection import DEFAULT_TIOU_THRESHOLDS

    evaluator = cfg.get("test_evaluator")
    if isinstance(evaluator, dict) and evaluator.get("tiou_thresholds"):
        return [float(t) for t in evaluator["tiou_thresholds"]]
    return [float(t) for t in DEFAULT_TIOU_THRESHOLDS]


def fuse_classifier_scores(cfg, predictions: dict, classifier_scores: str | os.PathLike | None = None,
                           top_k: int | None = None, class_agnostic: bool = True) -> tuple[dict, list[str]]:
    """Class-agnostic predictions fused with the classifier scores file given (or the config's
    ``classifier_scores``), ``top_k`` classes per segment (or ``cfg.classifier_top_k``, 2).
    Returns (predictions, warnings); unchanged when there is no classifier file."""
    from tad.eval.classifier_fusion import fuse_with_classifier, load_classifier_scores

    path = classifier_scores or cfg.get("classifier_scores")
    if not path:
        return predictions, []
    if not class_agnostic:
        raise TadInputError(path, "classifier scores are fused with a class-agnostic detector, but this model "
                                  "predicts classes itself (its config has class_agnostic=False)")
    k = int(top_k if top_k is not None else (cfg.get("classifier_top_k") or 2))
    fused, report = fuse_with_classifier(predictions, load_classifier_scores(path), k)
    notes = [f"{path}: no classifier scores for {len(report.unscored)} videos (e.g. {report.unscored[0]}); "
             f"their detections are dropped"] if report.unscored else []
    return fused, notes


def run_inference(cfg, checkpoint: str | os.PathLike, split: str = "test", out: str | os.PathLike | None = "preds.json",
                  metrics_out: str | os.PathLike | None = None, device: str | None = None,
                  progress: bool = True, classifier_scores: str | os.PathLike | None = None,
                  classifier_top_k: int | None = None):
    """Predict ``split`` with ``checkpoint``; write ``out`` (and ``metrics_out``); returns (predictions, DetectionResult).

    A class-agnostic model's segments are fused with ``classifier_scores`` (or the config's);
    without any, they are scored class-agnostically."""
    from tad.eval.annotations import load_annotations
    from tad.eval.classifier_fusion import class_agnostic_annotations
    from tad.eval.detection import evaluate_detections
    from tad.eval.results import write_predictions

    device = select_device(device)
    subset = resolve_subset(cfg, split)
    model, ckpt_classes = load_detector(cfg, checkpoint, device)
    dataset = build_test_dataset(cfg, subset, classes=ckpt_classes or cfg.get("classes"))
    loader_cfg = cfg.get("test_dataloader") or {}
    predictions = predict_dataset(model, dataset, dataset.classes, batch_size=int(loader_cfg.get("batch_size", 1)),
                                  num_workers=int(loader_cfg.get("num_workers", 0)), progress=progress)
    agnostic = bool(getattr(dataset, "class_agnostic", False))
    predictions, notes = fuse_classifier_scores(cfg, predictions, classifier_scores, classifier_top_k, agnostic)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_predictions(out, predictions)
    annotations = load_annotations(dataset.ann_file)
    if agnostic and not (classifier_scores or cfg.get("classifier_scores")):
        annotations = class_agnostic_annotations(annotations)
    result = evaluate_detections(annotations, predictions, subset=subset, tiou_thresholds=_tiou_thresholds(cfg))
    result.warnings.extend(notes)
    if metrics_out is not None:
        Path(metrics_out).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_out).write_text(json.dumps(result.to_dict(), indent=2))
    return predictions, result
