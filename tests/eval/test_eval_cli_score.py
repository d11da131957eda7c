from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner
from eval_helpers import REPO, actionformer_db, load_reference, write_json

from tad.cli import main
from tad.eval.annotations import load_annotations
from tad.eval.detection import evaluate_detections
from tad.eval.visualize import plot_pr_curves
from tad.eval.results import write_predictions


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def run(*args):
    return CliRunner().invoke(main, ["score", *map(str, args)])


def test_score_example_matches_reference():
    result = run("--example")
    assert result.exit_code == 0, result.output
    ref = load_reference()
    raw = json.loads((REPO / "tad/data/example_annotations.json").read_text())
    preds = json.loads((REPO / "tad/data/example_predictions.json").read_text())["results"]
    mAP, avg, _ = ref.reference_map(raw, preds, "test", (0.3, 0.4, 0.5, 0.6, 0.7))
    row = next(line for line in result.output.splitlines() if line.startswith("mAP (%)"))
    assert row.split()[2:] == [f"{100 * x:.2f}" for x in mAP] + [f"{100 * avg:.2f}"]
    assert 0.3 < avg < 0.8


def test_score_writes_metrics_and_plot(tmp_path, thumos_json):
    ann = load_annotations(thumos_json)
    rng = np.random.default_rng(0)
    preds = {}
    for vid, v in ann.subset("test").items():
        starts = v.segments[:, 0] + rng.normal(0, 0.5, len(v))
        ends = np.maximum(starts, v.segments[:, 1] + rng.normal(0, 0.5, len(v)))
        preds[vid] = [{"label": ann.classes[c], "score": float(rng.random()), "segment": [float(s), float(e)]}
                      for s, e, c in zip(starts, ends, v.labels)]
    pred_file = write_predictions(tmp_path / "preds.json", preds)
    metrics, png = tmp_path / "m" / "metrics.json", tmp_path / "pr.png"
    result = run(pred_file, "--annotations", thumos_json, "--split", "test", "--tiou", "0.3:0.1:0.7",
                 "--metrics-out", metrics, "--plot", png, "--per-class")
    assert result.exit_code == 0, result.output
    expected = evaluate_detections(ann, preds, "test")
    doc = json.loads(metrics.read_text())
    assert doc["tiou_thresholds"] == [0.3, 0.4, 0.5, 0.6, 0.7]
    np.testing.assert_allclose(doc["mAP"], expected.mAP, rtol=0, atol=1e-15)
    assert doc["average_mAP"] == pytest.approx(expected.average_mAP, abs=1e-15)
    assert len(doc["per_class_AP"]) == 20 and all(0 <= x <= 1 for v in doc["per_class_AP"].values() for x in v)
    assert f"{100 * expected.average_mAP:.2f}" in result.output
    assert "VolleyballSpiking" in result.output  # --per-class rows
    assert "212 videos" in result.output
    assert png_size(png) == (800, 600)


def test_plot_handles_classes_without_predictions(tmp_path):
    ann_file = write_json(tmp_path / "a.json", actionformer_db({"v": ("Test", 30.0, [("A", 0, 5), ("B", 10, 20)])}))
    ann = load_annotations(ann_file)
    res = evaluate_detections(ann, {"v": [{"label": "A", "score": 0.5, "segment": [0, 5]}]}, "test")
    path = plot_pr_curves(res, tmp_path / "deep" / "pr.png", width=640, height=480)
    assert png_size(path) == (640, 480)
    empty = evaluate_detections(ann, {}, "test")
    assert png_size(plot_pr_curves(empty, tmp_path / "empty.png")) == (800, 600)


def test_unknown_video_warning_printed(tmp_path):
    ann_file = write_json(tmp_path / "a.json", actionformer_db({"v": ("Test", 30.0, [("A", 0, 5)])}))
    pred_file = write_predictions(tmp_path / "p.json", {
        "v": [{"label": "A", "score": 0.5, "segment": [0, 5]}],
        "x": [{"label": "A", "score": 0.4, "segment": [0, 5]}]})
    result = run(pred_file, "-a", ann_file)
    assert result.exit_code == 0
    assert "Warning: 1 predictions on 1 videos absent from the annotations" in result.output


@pytest.mark.parametrize("case", ["bad_json", "bad_score", "unknown_label", "bad_split", "bad_tiou", "missing"])
def test_score_errors_are_one_line(tmp_path, case):
    ann_file = write_json(tmp_path / "a.json", actionformer_db({"v": ("Test", 30.0, [("A", 0, 5)])}))
    pred = tmp_path / "p.json"
    pred.write_text(json.dumps({"results": {"v": [{"label": "A", "score": 0.5, "segment": [0, 5]}]}}))
    args = [pred, "-a", ann_file]
    expect = None
    if case == "bad_json":
        pred.write_text("{oops")
        expect = f"Error: {pred}: not valid JSON"
    elif case == "bad_score":
        pred.write_text('{"results": {"v": [{"label": "A", "score": NaN, "segment": [0, 5]}]}}')
        expect = f"Error: {pred}: results['v'][0]: 'score' must be a finite number"
    elif case == "unknown_label":
        pred.write_text('{"results": {"v": [{"label": "Q", "score": 0.1, "segment": [0, 5]}]}}')
        expect = f"Error: {pred}: results['v'][0]: unknown label 'Q'"
    elif case == "bad_split":
        args += ["--split", "train"]
        expect = f"Error: {ann_file}: no subset 'train' (subsets: Test)"
    elif case == "bad_tiou":
        args += ["--tiou", "0.5,1.5"]
    elif case == "missing":
        args = [tmp_path / "nope.json", "-a", ann_file]
        expect = f"Error: {tmp_path / 'nope.json'}: file not found"
    result = run(*args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    if expect:
        assert result.exit_code == 1
        assert result.output.strip() == expect or result.output.strip().startswith(expect)
        assert len(result.output.strip().splitlines()) == 1
    else:
        assert "thresholds must lie in (0, 1]" in result.output


def test_score_help_has_examples():
    result = CliRunner().invoke(main, ["score", "--help"])
    assert result.exit_code == 0 and "tad score --example" in result.output
    assert "score" in CliRunner().invoke(main, ["--help"]).output
