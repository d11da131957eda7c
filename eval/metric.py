"""mmengine metric: detection mAP of a model's predict outputs (contract C4 -> C1).

    val_evaluator = dict(type='DetectionMAP', ann_file=..., subset='test',
                         tiou_thresholds=[0.3, 0.4, 0.5, 0.6, 0.7], out_file=None)

A class-agnostic model (``class_agnostic=True``, labels all 0) is scored after fusion with
an external video classifier (``classifier_scores``: CUHK-format JSON, ``classifier_top_k``
classes per segment, :mod:`tad.eval.classifier_fusion`), or class-agnostically without one.

``compute_metrics`` returns ``{'mAP@0.3': ..., 'mAP@0.7': ..., 'average_mAP': ...}`` as
fractions (no prefix, so ``save_best='average_mAP'`` works) and, with ``out_file``, writes
the ActivityNet predictions JSON.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from tad.errors import TadInputError
from tad.eval.annotations import load_annotations
from tad.eval.classifier_fusion import (AGNOSTIC_CLASS, class_agnostic_annotations, fuse_with_classifier,
                                        load_classifier_scores)
from tad.eval.detection import DEFAULT_TIOU_THRESHOLDS, evaluate_detections
from tad.eval.registry import METRICS
from tad.eval.results import write_predictions

__all__ = ["DetectionMAP", "metric_key"]


def metric_key(tiou: float) -> str:
    """'mAP@0.3', 'mAP@0.55': the name of one threshold's mAP."""
    return f"mAP@{float(tiou):g}"


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _field(sample: Any, name: str) -> Any:
    return sample[name] if isinstance(sample, dict) else getattr(sample, name)


@METRICS.register_module()
class DetectionMAP(BaseMetric):
    """ActivityNet-protocol mAP at tIoU thresholds over the model's detections.

    Detections of one video spread over several items (sliding windows) are pooled."""

    def __init__(self, ann_file: str | None, subset: str | None = "test",
                 tiou_thresholds: Sequence[float] = DEFAULT_TIOU_THRESHOLDS, out_file: str | None = None,
                 recall_top_k: Sequence[int] | None = None, class_agnostic: bool = False,
                 classifier_scores: str | None = None, classifier_top_k: int = 2, collect_device: str = "cpu",
                 prefix: str | None = None, collect_dir: str | None = None) -> None:
        # a placeholder prefix silences mmengine's "prefix is not set" warning; keys stay bare
        super().__init__(collect_device=collect_device, prefix=prefix or "tad", collect_dir=collect_dir)
        self.prefix = prefix
        if not ann_file:
            raise TadInputError("DetectionMAP", "ann_file is not set (set the config's top-level ann_file "
                                                "or the evaluator's ann_file)")
        self.ann_file = str(ann_file)
        self.annotations = load_annotations(ann_file)
        self.subset = subset
        self.tiou_thresholds = [float(t) for t in tiou_thresholds]
        self.out_file = out_file
        self.recall_top_k = list(recall_top_k) if recall_top_k else None
        self.class_agnostic = bool(class_agnostic)
        self.classifier = load_classifier_scores(classifier_scores) if classifier_scores else None
        self.classifier_top_k = int(classifier_top_k)
        self.last_result = None

    @classmethod
    def fill_config(cls, metric_cfg: dict, cfg: Mapping, split: str) -> None:
        """Take ``ann_file``, ``class_agnostic``, ``classifier_scores``, ``classifier_top_k`` and
        the subset ``<split>_subset`` from the config's top level where
        ``metric_cfg`` leaves them unset (``tad.engine.runner.load_config`` calls this)."""
        for key in ("ann_file", "class_agnostic", "classifier_scores", "classifier_top_k"):
            if metric_cfg.get(key) is None and cfg.get(key) is not None:
                metric_cfg[key] = cfg[key]
        subset = cfg.get(f"{split}_subset")
        if metric_cfg.get("subset") is None and subset is not None:
            metric_cfg["subset"] = subset

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for sample in data_samples:
            segments = _numpy(_field(sample, "segments")).astype(np.float64).reshape(-1, 2)
            self.results.append(dict(
                video_id=str(_field(sample, "video_id")),
                segments=segments,
                scores=_numpy(_field(sample, "scores")).astype(np.float64).reshape(-1),
                labels=_numpy(_field(sample, "labels")).astype(np.int64).reshape(-1),
            ))

    def predictions(self, results: list[dict]) -> dict[str, list[dict]]:
        """Processed model outputs -> ActivityNet ``results`` dict (class names, seconds)."""
        classes = [AGNOSTIC_CLASS] if self.class_agnostic else self.annotations.classes
        merged: dict[str, list[dict]] = defaultdict(list)
        for r in results:
            dets = merged[r["video_id"]]
            for (t0, t1), score, label in zip(r["segments"].tolist(), r["scores"].tolist(), r["labels"].tolist()):
                dets.append({"label": classes[label], "score": score, "segment": [t0, t1]})
        return dict(merged)

    def compute_metrics(self, results: list) -> dict[str, float]:
        predictions = self.predictions(results)
        annotations = self.annotations
        if self.class_agnostic and self.classifier is not None:
            predictions, report = fuse_with_classifier(predictions, self.classifier, self.classifier_top_k)
            if report.unscored:
                MMLogger.get_current_instance().warning(
                    f"{self.classifier.path}: no classifier scores for {len(report.unscored)} videos "
                    f"(e.g. {report.unscored[0]}); their detections are dropped")
        elif self.class_agnostic:
            annotations = class_agnostic_annotations(annotations)
        res = evaluate_detections(annotations, predictions, subset=self.subset,
                                  tiou_thresholds=self.tiou_thresholds, recall_top_k=self.recall_top_k)
        self.last_result = res
        if self.out_file:
            write_predictions(self.out_file, predictions)
        MMLogger.get_current_instance().info(
            f"Detection mAP on {self.subset} ({res.num_videos} videos, {res.num_predictions} predictions):\n"
            + res.format_table())
        metrics = {metric_key(t): float(m) for t, m in zip(res.tiou_thresholds, res.mAP)}
        metrics["average_mAP"] = float(res.average_mAP)
        if res.recall is not None:
            for k, r in res.recall.items():
                metrics[f"recall@{k}x"] = float(r.mean())
        return metrics
