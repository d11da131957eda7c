from __future__ import annotations

import json
import random

import numpy as np
import pytest
from eval_helpers import actionformer_db, load_reference, write_json

from tad.errors import TadInputError
from tad.eval.annotations import load_annotations
from tad.eval.detection import TadEvalWarning, evaluate_detections

THR = (0.3, 0.4, 0.5, 0.6, 0.7)


def det(label, score, t0, t1):
    return {"label": label, "score": score, "segment": [t0, t1]}


@pytest.fixture
def small_ann(tmp_path):
    db = actionformer_db({
        "v1": ("Test", 40.0, [("A", 0.0, 10.0), ("A", 20.0, 30.0), ("B", 5.0, 15.0)]),
        "v2": ("Test", 40.0, [("A", 0.0, 10.0), ("A", 5.0, 15.0)]),
        "v3": ("Validation", 40.0, [("C", 0.0, 10.0)]),
    })
    return load_annotations(write_json(tmp_path / "ann.json", db))


def test_hand_worked_ap(small_ann):
    # class A, video v1: TP (tIoU 1), FP (its GT is taken), tIoU 0.6 with the second GT
    preds = {"v1": [det("A", 0.9, 0.0, 10.0), det("A", 0.8, 1.0, 10.0), det("A", 0.7, 20.0, 26.0)]}
    res = evaluate_detections(small_ann, {"v1": preds["v1"], "v2": []}, "test", (0.5, 0.7))
    # 4 GT of A: precision 1, 1/2, 2/3 at recall 1/4, 1/4, 2/4 (thr 0.5) -> AP = 1/4 + 1/4 * 2/3
    # thr 0.7: third is a FP -> AP = 1/4
    np.testing.assert_allclose(res.per_class_AP["A"], [0.25 + 0.25 * 2 / 3, 0.25], atol=1e-12)
    np.testing.assert_allclose(res.per_class_AP["B"], [0.0, 0.0])
    assert "C" not in res.per_class_AP  # no GT in the test subset
    np.testing.assert_allclose(res.mAP, [(0.25 + 0.25 * 2 / 3) / 2, 0.125], atol=1e-12)
    assert res.average_mAP == pytest.approx(np.mean(res.mAP), abs=1e-15)
    assert res.num_gt == 5 and res.num_videos == 2 and res.num_predictions == 3


def test_matches_highest_tiou_unmatched_gt(small_ann):
    # v2 GT [0,10] and [5,15]. [4,14]: tIoU 6/14 = 0.43 with the first, 9/11 = 0.82 with the
    # second -> must take the second, leaving the first to [0,9] (tIoU 0.9). Taking the first
    # above-threshold GT instead would make [0,9] a FP at 0.4.
    preds = {"v2": [det("A", 0.9, 4.0, 14.0), det("A", 0.8, 0.0, 9.0)]}
    res = evaluate_detections(small_ann, preds, "test", (0.4,))
    # 4 GT of A, 2 found with precision 1 -> AP 0.5
    assert res.per_class_AP["A"][0] == pytest.approx(0.5, abs=1e-12)


def test_perfect_predictions_give_one(thumos_json):
    ann = load_annotations(thumos_json)
    rng = np.random.default_rng(1)
    preds = {vid: [det(ann.classes[c], float(rng.random()), float(s), float(e))
                   for (s, e), c in zip(v.segments, v.labels)] for vid, v in ann.subset("test").items()}
    res = evaluate_detections(ann, preds, "test", THR)
    np.testing.assert_allclose(res.mAP, 1.0, atol=1e-12)
    assert res.average_mAP == pytest.approx(1.0, abs=1e-12)
    assert len(res.per_class_AP) == 20


def test_unknown_and_other_subset_videos_are_false_positives_with_warning(small_ann):
    good = [det("A", 0.5, 0.0, 10.0), det("A", 0.4, 20.0, 30.0)]
    base = evaluate_detections(small_ann, {"v1": good}, "test", (0.5,))
    preds = {"v1": good, "ghost": [det("A", 0.9, 0.0, 10.0), det("A", 0.8, 0.0, 10.0)],
             "v3": [det("A", 0.7, 0.0, 10.0)]}
    with pytest.warns(TadEvalWarning) as record:
        res = evaluate_detections(small_ann, preds, "test", (0.5,))
    messages = [str(w.message) for w in record]
    assert any(m.startswith("2 predictions on 1 videos absent from the annotations") for m in messages)
    assert any(m.startswith("1 predictions on 1 videos of other subsets") for m in messages)
    assert len(res.warnings) == 2
    # 3 FP ranked above the 2 TP: precision 1/4, 2/5 at recall 1/4, 2/4
    assert res.per_class_AP["A"][0] == pytest.approx(0.25 * 0.4 + 0.25 * 0.4, abs=1e-12)
    assert base.per_class_AP["A"][0] == pytest.approx(0.5, abs=1e-12)


def test_duplicate_and_tiny_gt_removed(tmp_path):
    db = actionformer_db({"v": ("Test", 60.0, [("A", 0.0, 10.0), ("A", 0.0, 10.0), ("A", 0.0004, 10.0008),
                                                ("A", 30.0, 30.0005)])})
    ann = load_annotations(write_json(tmp_path / "dup.json", db))
    res = evaluate_detections(ann, {"v": [det("A", 0.9, 0.0, 10.0)]}, "test", THR)
    np.testing.assert_allclose(res.mAP, 1.0)  # one real instance, found
    assert res.num_gt == 1


def test_classes_without_predictions_count_as_zero(small_ann):
    res = evaluate_detections(small_ann, {}, "test", THR)
    np.testing.assert_array_equal(res.mAP, np.zeros(5))
    assert set(res.per_class_AP) == {"A", "B"}


def test_adding_low_score_false_positive_never_raises_ap(thumos_json):
    ann = load_annotations(thumos_json)
    preds = _random_predictions(ann, seed=3, max_videos=40)
    before = evaluate_detections(ann, preds, "test", THR)
    rng = np.random.default_rng(4)
    for trial in range(5):
        vid = list(preds)[trial]
        cls = ann.classes[ann.videos[vid].labels[0]]
        low = min(d["score"] for dets in preds.values() for d in dets if d["label"] == cls) / 2
        t0 = float(rng.uniform(0, 50))
        more = {k: list(v) for k, v in preds.items()}
        more[vid].append(det(cls, low, t0, t0 + float(rng.uniform(1, 10))))
        after = evaluate_detections(ann, more, "test", THR)
        assert np.all(after.per_class_AP[cls] <= before.per_class_AP[cls] + 1e-15)
        assert np.all(after.mAP <= before.mAP + 1e-15)


def test_permutation_invariance(thumos_json):
    ann = load_annotations(thumos_json)
    preds = _random_predictions(ann, seed=5, max_videos=60)
    res = evaluate_detections(ann, preds, "test", THR)
    rnd = random.Random(0)
    vids = list(preds)
    rnd.shuffle(vids)
    shuffled = {}
    for v in vids:
        dets = list(preds[v])
        rnd.shuffle(dets)
        shuffled[v] = dets
    res2 = evaluate_detections(ann, shuffled, "test", THR)
    np.testing.assert_array_equal(res.mAP, res2.mAP)
    for c in res.per_class_AP:
        np.testing.assert_array_equal(res.per_class_AP[c], res2.per_class_AP[c])


def _random_predictions(ann, seed: int, max_videos: int, fp_per_video: int = 8, subset: str = "test"):
    """Jittered GT copies and random FPs; continuous scores (no ties)."""
    rng = np.random.default_rng(seed)
    preds = {}
    for vid, v in list(ann.subset(subset).items())[:max_videos]:
        dets = []
        for (s, e), c in zip(v.segments, v.labels):
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 0.3, 2) * (e - s)
                t0 = float(s + j[0])
                dets.append(det(ann.classes[c], float(rng.random()), t0, float(max(t0, e + j[1]))))
        for _ in range(fp_per_video):
            t0 = float(rng.uniform(0, v.duration))
            dets.append(det(ann.classes[int(rng.integers(len(ann.classes)))], float(rng.random() * 0.7),
                            t0, t0 + float(rng.exponential(5))))
        preds[vid] = dets
    return preds


@pytest.mark.parametrize("seed, subset, thresholds", [
    (10, "test", THR), (11, "validation", THR), (12, "test", tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))),
    (13, "test", (0.1, 0.2)),
])
def test_equal_to_loop_reference(thumos_json, seed, subset, thresholds):
    ref = load_reference()
    ann = load_annotations(thumos_json)
    raw = json.loads(thumos_json.read_text())
    preds = _random_predictions(ann, seed, max_videos=45, subset=subset)
    preds["not_a_video"] = [det("Diving", 0.99, 0.0, 5.0)]
    with pytest.warns(TadEvalWarning):
        res = evaluate_detections(ann, preds, subset, thresholds)
    ref_map, ref_avg, ref_cls = ref.reference_map(raw, preds, subset, thresholds)
    assert set(ref_cls) == set(res.per_class_AP)
    assert np.abs(res.mAP - np.array(ref_map)).max() < 1e-9
    assert abs(res.average_mAP - ref_avg) < 1e-9
    for c, ap in ref_cls.items():
        assert np.abs(res.per_class_AP[c] - np.array(ap)).max() < 1e-9
    assert 0.01 < res.average_mAP < 0.9  # a non-trivial case (45 of the videos have predictions)


def test_recall_at_k_by_hand(small_ann):
    # class A has GT v1:[0,10],[20,30] and v2:[0,10],[5,15]; v1 gets 2 x 2 = 4 predictions at 2x
    preds = {"v1": [det("A", 0.9, 40.0, 41.0), det("A", 0.8, 0.0, 10.0), det("A", 0.7, 39.0, 40.0),
                    det("A", 0.6, 20.0, 30.0)]}
    res = evaluate_detections(small_ann, preds, "test", (0.5,), recall_top_k=(1, 2))
    # top 1x = 2 predictions in v1 cover [0,10]: 1 of 4 GT of A; top 2x covers 2 of 4; B: 0
    assert res.recall[1][0] == pytest.approx((1 / 4 + 0) / 2)
    assert res.recall[2][0] == pytest.approx((2 / 4 + 0) / 2)
    assert "recall" in res.to_dict() and "R@2x" in res.format_table()


def test_result_dict_and_table(small_ann):
    res = evaluate_detections(small_ann, {"v1": [det("A", 0.9, 0.0, 10.0)]}, "test", THR)
    d = res.to_dict()
    assert set(d) == {"tiou_thresholds", "mAP", "average_mAP", "per_class_AP"}
    assert d["tiou_thresholds"] == list(THR) and len(d["mAP"]) == 5
    assert all(0 <= x <= 1 for x in d["mAP"]) and d["average_mAP"] == pytest.approx(0.125)
    json.dumps(d)  # plain JSON types
    table = res.format_table(per_class=True)
    assert "12.50" in table and "Avg" in table and "0.30" in table
    assert any(line.startswith("A ") for line in table.splitlines())


def test_bad_arguments(small_ann):
    with pytest.raises(ValueError, match="tIoU thresholds"):
        evaluate_detections(small_ann, {}, "test", (0.0, 0.5))
    with pytest.raises(TadInputError, match="no subset 'training'"):
        evaluate_detections(small_ann, {}, "training")
    with pytest.raises(TadInputError, match="unknown label 'Z'"):
        evaluate_detections(small_ann, {"v1": [det("Z", 0.5, 0, 1)]}, "test")


def test_integer_class_ids_accepted(small_ann):
    a = evaluate_detections(small_ann, {"v1": [det("A", 0.9, 0.0, 10.0)]}, "test")
    b = evaluate_detections(small_ann, {"v1": [det(0, 0.9, 0.0, 10.0)]}, "test")
    np.testing.assert_array_equal(a.mAP, b.mAP)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_overlapping_cases_equal_to_reference(tmp_path, seed):
    """Heavily overlapping GT and predictions (long chains in one video), negative and
    zero-length predictions: exercises the cluster-wise matching."""
    ref = load_reference()
    rng = np.random.default_rng(seed)
    videos = {}
    for v in range(4):
        anns = []
        for _ in range(int(rng.integers(5, 30))):
            t0 = float(rng.uniform(0, 60))
            anns.append((str(rng.choice(["A", "B"])), t0, t0 + float(rng.uniform(0.5, 8))))
        videos[f"v{v}"] = ("test", 70.0, anns)
    raw = actionformer_db(videos, classes=("A", "B"))
    ann = load_annotations(write_json(tmp_path / "dense.json", raw))
    preds = {}
    for v in videos:
        dets = []
        for _ in range(int(rng.integers(20, 120))):
            t0 = float(rng.uniform(-2, 62))
            dets.append(det(str(rng.choice(["A", "B"])), float(rng.random()), t0,
                            t0 + float(rng.choice([0.0, rng.uniform(0.3, 9)]))))
        preds[v] = dets
    thresholds = (0.1, 0.3, 0.5, 0.7, 0.9)
    res = evaluate_detections(ann, preds, "test", thresholds)
    ref_map, ref_avg, ref_cls = ref.reference_map(raw, preds, "test", thresholds)
    assert np.abs(res.mAP - np.array(ref_map)).max() < 1e-9
    for c, ap in ref_cls.items():
        assert np.abs(res.per_class_AP[c] - np.array(ap)).max() < 1e-9
