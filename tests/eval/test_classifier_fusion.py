"""Class-agnostic segments x video classifier scores (CUHK format), and class-agnostic scoring."""
from __future__ import annotations

import json

import numpy as np
import pytest
from eval_helpers import actionformer_db, write_json

from tad.errors import TadInputError
from tad.eval.annotations import load_annotations
from tad.eval.classifier_fusion import (class_agnostic_annotations, fuse_with_classifier,
                                        load_classifier_scores)
from tad.eval.detection import evaluate_detections


def cuhk(path, results, classes=("A", "B", "C")):
    path.write_text(json.dumps({"results": results, "class": list(classes)}))
    return path


def test_each_segment_gets_the_top_k_classes_scored_segment_times_class(tmp_path):
    clf = load_classifier_scores(cuhk(tmp_path / "c.json", {"v_abc": [0.1, 0.7, 0.2], "xyz": [0.5, 0.3, 0.2]}))
    preds = {"abc": [{"label": "action", "score": 0.8, "segment": [1.0, 4.0]},
                     {"label": "action", "score": 0.5, "segment": [6.0, 9.0]}],
             "v_xyz": [{"label": "action", "score": 0.4, "segment": [0.0, 2.0]}],
             "nobody": [{"label": "action", "score": 0.9, "segment": [0.0, 1.0]}]}
    fused, report = fuse_with_classifier(preds, clf, top_k=2)
    got = [(d["label"], round(d["score"], 6), d["segment"]) for d in fused["abc"]]
    assert got == [("B", 0.56, [1.0, 4.0]), ("B", 0.35, [6.0, 9.0]), ("C", 0.16, [1.0, 4.0]),
                   ("C", 0.1, [6.0, 9.0])]  # v_ prefix added to find 'abc', sorted by fused score
    assert [(d["label"], round(d["score"], 6)) for d in fused["v_xyz"]] == [("A", 0.2), ("B", 0.12)]
    assert fused["nobody"] == [] and report.unscored == ["nobody"] and report.fused == 2
    one, _ = fuse_with_classifier(preds, clf, top_k=1)
    assert [d["label"] for d in one["abc"]] == ["B", "B"]


def test_fusion_turns_a_good_localiser_into_a_good_detector(tmp_path):
    ann = load_annotations(write_json(tmp_path / "a.json", actionformer_db({
        "v1": ("Validation", 60.0, [("A", 5, 20)]), "v2": ("Validation", 60.0, [("B", 30, 50)]),
        "v3": ("Validation", 60.0, [("C", 10, 40)])})))
    preds = {vid: [{"label": "action", "score": 0.9, "segment": v.segments[0].tolist()}]
             for vid, v in ann.videos.items()}
    right = cuhk(tmp_path / "right.json", {"v1": [0.9, 0.05, 0.05], "v2": [0.1, 0.8, 0.1], "v3": [0.2, 0.1, 0.7]})
    fused, _ = fuse_with_classifier(preds, load_classifier_scores(right), top_k=2)
    assert evaluate_detections(ann, fused, "validation", [0.5, 0.95]).average_mAP == pytest.approx(1.0)
    agnostic = evaluate_detections(class_agnostic_annotations(ann), preds, "validation", [0.5, 0.95])
    assert agnostic.average_mAP == pytest.approx(1.0) and list(agnostic.per_class_AP) == ["action"]


@pytest.mark.parametrize("content,problem", [
    ("{oops", "not valid JSON"),
    ('{"results": {}}', "CUHK"),
    ('{"results": {"v": [0.1]}, "class": ["A", "B"]}', "has 1 scores, expected 2"),
    ('{"results": {"v": [0.1, NaN]}, "class": ["A", "B"]}', "NaN"),
])
def test_bad_classifier_files_are_one_line_errors(tmp_path, content, problem):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(TadInputError, match=problem) as info:
        load_classifier_scores(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(TadInputError, match="not found"):
        load_classifier_scores(tmp_path / "missing.json")


def test_metric_fuses_or_scores_class_agnostically(tmp_path):
    from tad.eval.metric import DetectionMAP

    ann_file = write_json(tmp_path / "a.json", actionformer_db({
        "v1": ("Validation", 60.0, [("A", 5, 20)]), "v2": ("Validation", 60.0, [("B", 30, 50)])}))
    clf = cuhk(tmp_path / "c.json", {"v1": [0.9, 0.05, 0.05], "v2": [0.3, 0.6, 0.1]})
    outputs = [dict(video_id="v1", segments=np.array([[5.0, 20.0]]), scores=np.array([0.9]), labels=np.array([0])),
               dict(video_id="v2", segments=np.array([[30.0, 50.0]]), scores=np.array([0.8]), labels=np.array([0]))]
    for kwargs in (dict(classifier_scores=str(clf)), dict()):
        metric = DetectionMAP(str(ann_file), subset="validation", tiou_thresholds=[0.5], class_agnostic=True, **kwargs)
        metric.process({}, outputs)
        assert metric.compute_metrics(metric.results)["average_mAP"] == pytest.approx(1.0)
        names = set(metric.last_result.per_class_AP)
        assert names == ({"A", "B"} if kwargs else {"action"})
