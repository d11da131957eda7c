"""Inference with a trained detector: predictions JSON and scores (contract C6).

``run_inference`` builds the model and the test data from a config, loads a checkpoint
(its ``state_dict`` holds the EMA weights when training used the EMA hook: mmengine
swaps them in when saving), predicts every video, writes ActivityNet-style JSON with
``tad.eval.results.write_predictions`` and scores it with
``tad.eval.detection.evaluate_detections``.

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

__all__ = ["run_inference", "load_detector", "build_test_dataset", "predict_dataset", "resolve_subset"]


def resolve_subset(cfg, split: str) -> str:
    """'test' / 'val' / 'train' -> the config's subset names; anything else is used as is."""
    aliases = {"test": "test_subset", "val": "val_subset", "train": "train_subset"}
    key = aliases.get(split.lower())
    if key is not None and cfg.get(key):
        return str(cfg[key])
    return split


def load_detector(cfg, checkpoint: str | os.PathLike, device: str = "cpu",
                  trust_checkpoint: bool = False) -> tuple[torch.nn.Module, list | None]:
    """Build ``cfg.model``, load ``checkpoint`` strictly; returns (model in eval mode, class names or None).

    The file is read weights-only (``tad.compat.safe_checkpoint``); ``trust_checkpoint=True``
    reads it as a pickle, which can run code stored in it."""
    from tad.compat.safe_checkpoint import load_checkpoint

    path = Path(checkpoint)
    if not path.is_file():
        raise TadInputError(path, "checkpoint not found")
    try:
        ckpt = load_checkpoint(str(path), map_location="cpu", trusted=trust_checkpoint)
    except TadInputError:
        raise
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
    evaluator = cfg.get("test_evaluator")
    if isinstance(evaluator, dict) and evaluator.get("tiou_thresholds"):
        return [float(t) for t in evaluator["tiou_thresholds"]]
    return [0.3, 0.4, 0.5, 0.6, 0.7]


def run_inference(cfg, checkpoint: str | os.PathLike, split: str = "test", out: str | os.PathLike | None = "preds.json",
                  metrics_out: str | os.PathLike | None = None, device: str | None = None,
                  progress: bool = True, trust_checkpoint: bool = False):
    """Predict ``split`` with ``checkpoint``; write ``out`` (and ``metrics_out``); returns (predictions, DetectionResult)."""
    from tad.eval.annotations import load_annotations
    from tad.eval.detection import evaluate_detections
    from tad.eval.results import write_predictions

    device = select_device(device)
    subset = resolve_subset(cfg, split)
    model, ckpt_classes = load_detector(cfg, checkpoint, device, trust_checkpoint=trust_checkpoint)
    dataset = build_test_dataset(cfg, subset, classes=ckpt_classes or cfg.get("classes"))
    loader_cfg = cfg.get("test_dataloader") or {}
    predictions = predict_dataset(model, dataset, dataset.classes, batch_size=int(loader_cfg.get("batch_size", 1)),
                                  num_workers=int(loader_cfg.get("num_workers", 0)), progress=progress)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_predictions(out, predictions)
    annotations = load_annotations(dataset.ann_file)
    result = evaluate_detections(annotations, predictions, subset=subset, tiou_thresholds=_tiou_thresholds(cfg))
    if metrics_out is not None:
        Path(metrics_out).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_out).write_text(json.dumps(result.to_dict(), indent=2))
    return predictions, result
