from __future__ import annotations

import json

import numpy as np
import pytest

from tad.errors import TadInputError
from tad.eval.results import load_predictions, write_predictions


def test_lossless_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    results = {}
    for v in range(5):
        dets = []
        for _ in range(20):
            t0 = float(rng.uniform(0, 100))
            dets.append({"label": "A" if rng.random() < 0.5 else "B", "score": float(rng.random()),
                         "segment": [t0, t0 + float(rng.exponential(3))]})
        results[f"video/{v}"] = dets
    results["f32"] = [{"label": "A", "score": np.float32(0.1), "segment": np.array([1 / 3, 2 / 3], np.float32)}]
    results["empty"] = []
    path = write_predictions(tmp_path / "sub" / "preds.json", results, external_data={"used": True, "details": "x"})
    back = load_predictions(path, classes=["A", "B"])
    assert list(back) == list(results)
    for vid in results:
        for a, b in zip(results[vid], back[vid]):
            assert b["label"] == a["label"]
            assert b["score"] == float(a["score"])  # bit-exact
            assert b["segment"] == [float(a["segment"][0]), float(a["segment"][1])]
    doc = json.loads(path.read_text())
    assert doc["version"] == "VERSION 1.3" and doc["external_data"] == {"used": True, "details": "x"}
    assert not list(path.parent.glob("*.tmp"))


def test_integer_labels_taken_as_class_ids(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"results": {"v": [{"label": 1, "score": 0.5, "segment": [0, 1]}]}}))
    assert load_predictions(path, classes=["A", "B"])["v"][0]["label"] == "B"


@pytest.mark.parametrize("content, message", [
    ("[1, 2", "not valid JSON"),
    ('{"version": "x"}', "missing key 'results'"),
    ('{"results": {"v": {"label": "A"}}}', "results['v']: must be a list"),
    ('{"results": {"v": [{"label": "A", "segment": [0, 1]}]}}', "results['v'][0]: missing key 'score'"),
    ('{"results": {"v": [{"score": 0.5, "segment": [0, 1]}]}}', "results['v'][0]: missing key 'label'"),
    ('{"results": {"v": [{"label": "A", "score": 0.5}]}}', "results['v'][0]: missing key 'segment'"),
    ('{"results": {"v": [{"label": "A", "score": 0.5, "segment": [0, 1]}, '
     '{"label": "A", "score": 0.5, "segment": [4, 2]}]}}', "results['v'][1]: segment end 2 < start 4"),
    ('{"results": {"v": [{"label": "A", "score": NaN, "segment": [0, 1]}]}}', "'score' must be a finite number"),
    ('{"results": {"v": [{"label": "A", "score": Infinity, "segment": [0, 1]}]}}', "'score' must be a finite number"),
    ('{"results": {"v": [{"label": "A", "score": "high", "segment": [0, 1]}]}}', "'score' must be a finite number"),
    ('{"results": {"v": [{"label": "A", "score": 0.5, "segment": [0, -Infinity]}]}}', "'segment' must be finite"),
    ('{"results": {"v": [{"label": "A", "score": 0.5, "segment": [0]}]}}', "'segment' must be [start, end]"),
    ('{"results": {"v": [{"label": "Zumba", "score": 0.5, "segment": [0, 1]}]}}', "unknown label 'Zumba'"),
])
def test_bad_prediction_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TadInputError) as err:
        load_predictions(path, classes=["A", "B"])
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_missing_prediction_file(tmp_path):
    with pytest.raises(TadInputError, match="file not found"):
        load_predictions(tmp_path / "missing.json")


def test_write_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_predictions(tmp_path / "p.json", {"v": [{"label": "A", "score": float("nan"), "segment": [0, 1]}]})
    assert not (tmp_path / "p.json").exists()
