"""End to end on features: synthetic store -> `tad train` -> `tad eval` -> `tad score`.

A tiny, easy synthetic set (12 videos, 3 classes, low noise) where a working detector
must find nearly every action: mAP@0.5 > 0.8 on the test subset.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tad.synthetic_features import make_synthetic_store, preset_config, random_layout

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "bench" / "configs" / "bench_e2e_tiny.py"


def _tad(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", "from tad.cli import main; main()", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"tad {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def easy_set(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("e2e")
    layout = random_layout(num_videos=12, num_classes=3, duration_range=(30.0, 50.0), segments_per_video=(2, 4),
                           segment_length=(2.0, 7.0), seed=0)
    summary = make_synthetic_store(layout, root / "features.h5", preset_config("easy", feature_dim=32, seed=0),
                                   ann_out=root / "annotations.json")
    return summary.store, summary.annotations


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_eval_score_reaches_high_map(easy_set, tmp_path):
    store, ann = easy_set
    # a concrete config beside the data: inherits the shipped one, sets the paths
    config = tmp_path / "e2e_config.py"
    config.write_text(f"_base_ = [{str(CONFIG)!r}]\nann_file = {str(ann)!r}\nfeature_store = {str(store)!r}\n")
    work_dir = tmp_path / "work"

    train = _tad("train", str(config), "--work-dir", str(work_dir), "--seed", "0", cwd=tmp_path)
    checkpoints = sorted(work_dir.glob("*.pth"))
    assert checkpoints, f"no checkpoint written in {work_dir}"
    assert str(work_dir) in train.stdout + train.stderr

    from tad.engine.runner import find_best_checkpoint

    checkpoint = find_best_checkpoint(work_dir)
    preds, metrics = tmp_path / "preds.json", tmp_path / "metrics.json"
    evaluation = _tad("eval", str(config), str(checkpoint), "--split", "test", "--out", str(preds),
                      "--metrics-out", str(metrics), cwd=tmp_path)
    assert "0.5" in evaluation.stdout  # the mAP table

    # the exported predictions are valid ActivityNet JSON covering the test videos
    from tad.eval.annotations import load_annotations
    from tad.eval.results import load_predictions

    annotations = load_annotations(ann)
    raw = json.loads(preds.read_text())
    assert "results" in raw
    loaded = load_predictions(preds, classes=annotations.classes)
    test_ids = set(annotations.subset("test"))
    assert test_ids <= set(loaded)
    for vid in test_ids:
        duration = annotations.videos[vid].duration
        for det in loaded[vid]:
            assert det["label"] in annotations.classes and 0.0 <= det["score"] <= 1.0
            assert 0.0 <= det["segment"][0] <= det["segment"][1] <= duration + 1e-3  # float32 seconds

    # `tad score` agrees with `tad eval` and the detector found the actions
    scored = tmp_path / "scored.json"
    _tad("score", str(preds), "--annotations", str(ann), "--split", "test", "--metrics-out", str(scored), cwd=tmp_path)
    score = json.loads(scored.read_text())
    by_tiou = dict(zip([round(t, 2) for t in score["tiou_thresholds"]], score["mAP"]))
    assert by_tiou[0.5] > 0.8, f"mAP@0.5 = {by_tiou[0.5]:.3f} on the easy synthetic set"
    eval_metrics = json.loads(metrics.read_text())
    assert eval_metrics["average_mAP"] == pytest.approx(score["average_mAP"], abs=1e-6)
