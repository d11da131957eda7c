"""Class-agnostic detections + an external video-level classifier -> class-labelled detections.

The ActivityNet recipe: a detector that only localises actions (one class) and a video
classifier whose scores name the action. Each segment of a video is paired with the
classifier's ``top_k`` classes for that video and scored ``segment score x class score``.

Classifier scores are read in CUHK's format (``cuhk_val_simp_share.json``)::

    {"results": {video_id: [score of class 0, score of class 1, ...]}, "class": [name 0, name 1, ...]}

Video ids are matched exactly, else with ActivityNet's ``v_`` prefix added or removed.

Without classifier scores, a class-agnostic model is scored class-agnostically:
:func:`class_agnostic_annotations` gives every ground-truth segment the one class
``AGNOSTIC_CLASS``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from tad.errors import TadInputError
from tad.eval.annotations import AnnotationSet, VideoAnnotation

__all__ = ["AGNOSTIC_CLASS", "ClassifierScores", "load_classifier_scores", "fuse_with_classifier",
           "class_agnostic_annotations", "FusionReport"]

#: the label of every detection of a class-agnostic detector
AGNOSTIC_CLASS = "action"


@dataclass
class ClassifierScores:
    """Video-level class scores: ``classes`` (K names), ``scores[video_id]`` (K,) float64."""

    classes: list[str]
    scores: dict[str, np.ndarray]
    path: str = ""

    def lookup(self, video_id: str) -> np.ndarray | None:
        """The scores of ``video_id`` (exact id, else with ``v_`` added or removed), or None."""
        for candidate in (video_id, video_id[2:] if video_id.startswith("v_") else "v_" + video_id):
            if candidate in self.scores:
                return self.scores[candidate]
        return None


@dataclass
class FusionReport:
    """What the fusion did: videos fused, and videos with detections but no classifier scores
    (their detections are dropped: no class can be given to them)."""

    fused: int
    unscored: list[str]


def load_classifier_scores(path: str | os.PathLike) -> ClassifierScores:
    """Read a CUHK-format classifier file (see the module docstring); one-line TadInputError if malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TadInputError(path, "classifier scores file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TadInputError(path, f"cannot read classifier scores ({exc})") from None
    except json.JSONDecodeError as exc:
        raise TadInputError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict) or not isinstance(
            data.get("class"), list):
        raise TadInputError(path, 'expected {"results": {video_id: [scores]}, "class": [names]} '
                                  "(CUHK cuhk_val_simp_share.json format)")
    classes = [str(c) for c in data["class"]]
    if not classes:
        raise TadInputError(path, 'empty "class" list')
    scores = {}
    for vid, row in data["results"].items():
        values = np.asarray(row, dtype=np.float64).reshape(-1) if isinstance(row, list) else None
        if values is None or len(values) != len(classes):
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise TadInputError(path, f"results[{vid!r}] has {got} scores, expected {len(classes)} (one per class)")
        if not np.all(np.isfinite(values)):
            raise TadInputError(path, f"results[{vid!r}] has NaN/inf scores")
        scores[str(vid)] = values
    return ClassifierScores(classes, scores, str(path))


def fuse_with_classifier(predictions: Mapping[str, Sequence[Mapping]], classifier: ClassifierScores,
                         top_k: int = 2) -> tuple[dict[str, list[dict]], FusionReport]:
    """Class-agnostic ``predictions[video_id] = [{"segment", "score", ...}]`` -> every segment
    repeated for the video's ``top_k`` classifier classes, ``score = segment score x class
    score``, sorted by score. Returns (predictions, report)."""
    if int(top_k) < 1:
        raise TadInputError("--classifier-top-k", f"must be >= 1, got {top_k}")
    top_k = min(int(top_k), len(classifier.classes))
    fused: dict[str, list[dict]] = {}
    unscored = []
    for vid, dets in predictions.items():
        scores = classifier.lookup(str(vid))
        if scores is None:
            if len(dets):
                unscored.append(str(vid))
            fused[vid] = []
            continue
        best = np.argsort(-scores, kind="stable")[:top_k]
        out = [dict(label=classifier.classes[c], score=float(d["score"]) * float(scores[c]),
                    segment=[float(d["segment"][0]), float(d["segment"][1])])
               for d in dets for c in best]
        out.sort(key=lambda d: -d["score"])
        fused[vid] = out
    return fused, FusionReport(fused=len(predictions) - len(unscored), unscored=unscored)


def class_agnostic_annotations(ann: AnnotationSet) -> AnnotationSet:
    """``ann`` with every segment of class ``AGNOSTIC_CLASS`` (for scoring a localiser alone)."""
    videos = {vid: VideoAnnotation(v.video_id, v.subset, v.duration, v.fps, v.segments.copy(),
                                   np.zeros(len(v.labels), dtype=np.int64))
              for vid, v in ann.videos.items()}
    return AnnotationSet([AGNOSTIC_CLASS], videos, path=ann.path, version=ann.version)
