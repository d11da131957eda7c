"""End to end: `tad demo` renders, extracts, trains, evaluates and draws, and really detects."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tad.eval.annotations import load_annotations
from tad.eval.detection import evaluate_detections
from tad.eval.results import load_predictions
from tad.eval.visualize import png_size


def _chance_predictions(ann, subset: str, per_video: int, seed: int = 0) -> dict:
    """Random segments (uniform class, position, 2-7 s length, score): what no learning scores."""
    rng = np.random.default_rng(seed)
    out = {}
    for vid, video in ann.subset(subset).items():
        rows = []
        for _ in range(per_video):
            length = rng.uniform(2, 7)
            t0 = rng.uniform(0, max(video.duration - length, 0.1))
            rows.append({"label": ann.classes[int(rng.integers(len(ann.classes)))], "score": float(rng.uniform()),
                         "segment": [t0, min(t0 + length, video.duration)]})
        out[vid] = rows
    return out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tad_demo_end_to_end(tmp_path):
    workdir = tmp_path / "demo"
    command = [sys.executable, "-c", "from tad.cli import main; main()", "demo", "--workdir", str(workdir),
               "--videos", "12", "--epochs", "60", "--seed", "0"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=880)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "average mAP" in out and "total time" in out and str(workdir) in out

    summary = json.loads((workdir / "demo_summary.json").read_text())
    ann = load_annotations(workdir / "annotations.json")
    assert len(ann.videos) == 12 and len(ann.subset("test")) == 5
    predictions = load_predictions(workdir / "predictions.json", classes=ann.classes)
    assert set(predictions) == set(ann.subset("test"))

    # the score the demo reports is the one the predictions file earns
    rescored = evaluate_detections(ann, predictions, subset="test")
    assert rescored.average_mAP == pytest.approx(summary["average_mAP"], abs=1e-6)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["average_mAP"] == pytest.approx(summary["average_mAP"], abs=1e-6)

    # well above chance: random segments score a few percent at most
    chance = evaluate_detections(ann, _chance_predictions(ann, "test", per_video=50), subset="test").average_mAP
    print(f"demo average mAP {summary['average_mAP']:.3f} (chance {chance:.3f}), stages {summary['stage_seconds']}")
    assert chance < 0.08
    assert summary["average_mAP"] > 0.2, summary
    assert summary["average_mAP"] > 4 * chance

    timelines = [workdir / "timelines" / f"{vid}.png" for vid in sorted(ann.subset("test"))[:3]]
    for png in timelines:
        width, height = png_size(png)
        assert width == 1200 and height > 200
    assert summary["stage_seconds"].keys() == {"render", "extract", "train", "eval", "visualize"}
