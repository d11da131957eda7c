"""A picture and a score cannot disagree: the timeline's true positives are the scorer's matching."""
from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import actionformer_db, write_json

from tad.eval.annotations import load_annotations
from tad.eval.detection import evaluate_detections
from tad.eval.visualize import SegmentSet, match_predictions, plot_video_predictions, png_size

CLASSES = ("A", "B", "C")


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    videos, preds = {}, {}
    for v in range(6):
        gt = []
        for _ in range(int(rng.integers(1, 6))):
            s = float(rng.uniform(0, 80))
            gt.append((CLASSES[int(rng.integers(3))], round(s, 2), round(s + float(rng.uniform(2, 15)), 2)))
        if v == 0 and gt:  # a duplicate GT the protocol drops, and a GT shorter than 1 ms
            gt += [gt[0], (gt[0][0], 50.0, 50.0005)]
        videos[f"v{v}"] = ("Test", 100.0, gt)
        dets = []
        for label, s, e in gt:
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.normal(0, 0.2 * (e - s), 2)
                dets.append({"label": label if rng.random() < 0.8 else CLASSES[int(rng.integers(3))],
                             "score": float(np.round(rng.random(), 1)),  # ties on purpose
                             "segment": [s + float(jitter[0]), e + abs(float(jitter[1])) + 0.5]})
        for _ in range(int(rng.integers(0, 4))):
            s = float(rng.uniform(0, 90))
            dets.append({"label": CLASSES[int(rng.integers(3))], "score": float(np.round(rng.random(), 1)),
                         "segment": [s, s + float(rng.uniform(1, 10))]})
        preds[f"v{v}"] = dets
    return videos, preds


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("tiou", [0.3, 0.5, 0.7])
def test_timeline_true_positives_are_the_scorers(tmp_path, seed, tiou):
    videos, preds = _random_case(seed)
    ann = load_annotations(write_json(tmp_path / "a.json", actionformer_db(videos, CLASSES)))
    result = evaluate_detections(ann, preds, "test", [tiou], keep_matches=True)
    tp_per_class = {c: 0 for c in CLASSES}
    for vid, dets in preds.items():
        v = ann.videos[vid]
        pred = SegmentSet([d["segment"] for d in dets] or np.zeros((0, 2)),
                          [ann.class_index[d["label"]] for d in dets], [d["score"] for d in dets])
        is_tp, gt_matched = match_predictions(SegmentSet(v.segments, v.labels), pred, tiou)
        np.testing.assert_array_equal(is_tp, result.matches[vid].is_tp[0])
        np.testing.assert_array_equal(gt_matched, result.matches[vid].gt_matched[0])
        for d, hit in zip(dets, is_tp):
            tp_per_class[d["label"]] += int(hit)
    # the number of green bars per class is the TP count that gives the class its recall
    for cls, (precision, recall) in result.pr_curves.items():
        npos = sum(int(ann.class_index[cls] == k) for v in ann.videos.values()
                   for k in v.labels) - (1 if cls == videos["v0"][2][0][0] else 0) * 2
        expected = int(round(recall[0, -1] * npos)) if recall.shape[1] else 0
        assert tp_per_class[cls] == expected


def test_timeline_title_counts_the_scorers_true_positives(tmp_path, monkeypatch):
    videos, preds = _random_case(5)
    ann = load_annotations(write_json(tmp_path / "a.json", actionformer_db(videos, CLASSES)))
    result = evaluate_detections(ann, preds, "test", [0.5], keep_matches=True)
    import matplotlib.figure

    titles = []
    real = matplotlib.figure.Figure.suptitle
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle",
                        lambda self, text, **kw: titles.append(text) or real(self, text, **kw))
    for vid in preds:
        path = tmp_path / f"{vid}.png"
        plot_video_predictions(path, vid, ann.classes, ann.videos[vid], preds[vid], tiou=0.5, top_k=50)
        assert png_size(path)[0] == 1200
        assert titles[-1].endswith(f"TP@tIoU 0.5: {int(result.matches[vid].is_tp[0].sum())}")
