"""`tad score --dataset NAME`: the protocol comes from the dataset's evaluator config; on the real
ActivityNet-1.3 file the score matches the loop reference at 0.5:0.05:0.95 on validation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from eval_helpers import actionformer_db, load_reference, write_json

from tad.cli import main
from tad.eval.results import write_predictions

ANET_THRESHOLDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


@pytest.fixture(scope="module")
def anet_json(shared_dir):
    return shared_dir / "data" / "activitynet" / "activitynet13.json"


def _noisy_predictions(raw: dict, subset: str, seed: int, every: int = 1) -> dict:
    """Jittered copies of the GT (right and wrong classes) plus random false positives."""
    rng = np.random.default_rng(seed)
    classes = sorted({a["label"] for v in raw["database"].values() for a in v.get("annotations", [])})
    preds = {}
    for i, (vid, entry) in enumerate(sorted(raw["database"].items())):
        if entry["subset"] != subset or i % every:
            continue
        dets, duration = [], float(entry["duration"])
        for a in entry["annotations"]:
            s, e = a["segment"]
            length = max(e - s, 0.1)
            for _ in range(2):
                js, je = s + rng.normal(0, 0.15) * length, e + rng.normal(0, 0.15) * length
                label = a["label"] if rng.random() < 0.7 else classes[int(rng.integers(len(classes)))]
                dets.append({"label": label, "score": float(rng.random()),
                             "segment": [float(min(js, je)), float(max(js, je) + 0.01)]})
        for _ in range(2):
            s = float(rng.uniform(0, duration))
            dets.append({"label": classes[int(rng.integers(len(classes)))], "score": float(rng.random() * 0.5),
                         "segment": [s, min(duration, s + float(rng.uniform(1, 30)))]})
        preds[vid] = dets
    return preds


@pytest.mark.slow
def test_activitynet_preset_matches_reference_on_the_real_file(tmp_path, anet_json):
    raw = json.loads(anet_json.read_text())
    preds = _noisy_predictions(raw, "validation", seed=0, every=3)
    pred_file = write_predictions(tmp_path / "preds.json", preds)
    metrics = tmp_path / "metrics.json"
    result = CliRunner().invoke(main, ["score", str(pred_file), "-a", str(anet_json), "--dataset", "activitynet",
                                       "--metrics-out", str(metrics)])
    assert result.exit_code == 0, result.output
    doc = json.loads(metrics.read_text())
    assert doc["tiou_thresholds"] == ANET_THRESHOLDS
    assert "videos in split 'validation'" in result.output and "4728 videos" in result.output
    mAP, avg, per_class = load_reference().reference_map(raw, preds, "validation", ANET_THRESHOLDS)
    np.testing.assert_allclose(doc["mAP"], mAP, rtol=0, atol=1e-12)
    assert doc["average_mAP"] == pytest.approx(avg, abs=1e-12)
    assert len(doc["per_class_AP"]) == 200 and 0.05 < avg < 0.9


@pytest.mark.parametrize("dataset,thresholds,split", [
    ("thumos14", [0.3, 0.4, 0.5, 0.6, 0.7], "Test"),
    ("epic", [0.1, 0.2, 0.3, 0.4, 0.5], "Validation"),
    ("multithumos", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], "Test"),
])
def test_presets_set_thresholds_and_subset(tmp_path, dataset, thresholds, split):
    ann = write_json(tmp_path / "a.json", actionformer_db({"v": (split, 30.0, [("A", 0, 5)]),
                                                           "w": ("Other", 30.0, [("B", 0, 5)])}))
    pred = write_predictions(tmp_path / "p.json", {"v": [{"label": "A", "score": 0.5, "segment": [0.2, 5]}]})
    metrics = tmp_path / "m.json"
    result = CliRunner().invoke(main, ["score", str(pred), "-a", str(ann), "--dataset", dataset,
                                       "--metrics-out", str(metrics)])
    assert result.exit_code == 0, result.output
    assert json.loads(metrics.read_text())["tiou_thresholds"] == thresholds
    assert f"split {split.lower()!r}" in result.output
    # --tiou and --split still override the preset
    result = CliRunner().invoke(main, ["score", str(pred), "-a", str(ann), "--dataset", dataset, "--tiou", "0.5",
                                       "--split", "all", "--metrics-out", str(metrics)])
    assert json.loads(metrics.read_text())["tiou_thresholds"] == [0.5] and "split 'all'" in result.output


def test_unknown_preset_is_one_line_error(tmp_path):
    ann = write_json(tmp_path / "a.json", actionformer_db({"v": ("Test", 30.0, [("A", 0, 5)])}))
    result = CliRunner().invoke(main, ["score", str(ann), "-a", str(ann), "--dataset", "kinetics"])
    assert result.exit_code != 0 and "no protocol of that name" in result.output and "activitynet" in result.output
    assert "Traceback" not in result.output
