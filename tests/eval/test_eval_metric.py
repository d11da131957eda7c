from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from eval_helpers import actionformer_db, write_json


@pytest.fixture
def ann_file(tmp_path):
    return write_json(tmp_path / "ann.json", actionformer_db({
        "v1": ("Test", 40.0, [("A", 0.0, 10.0), ("B", 20.0, 30.0)]),
        "v2": ("Test", 40.0, [("A", 5.0, 15.0)]),
        "v3": ("Validation", 40.0, [("C", 0.0, 10.0)]),
    }))


def test_detection_map_metric(ann_file, tmp_path):
    from tad.eval.registry import METRICS

    out = tmp_path / "out" / "preds.json"
    metric = METRICS.build(dict(type="DetectionMAP", ann_file=str(ann_file), subset="test",
                                tiou_thresholds=[0.3, 0.5, 0.7], out_file=str(out)))
    # v1 arrives in two windows; v2 prediction is off (tIoU 1/3 with its GT)
    metric.process({}, [
        dict(video_id="v1", segments=torch.tensor([[0.0, 10.0]]), scores=torch.tensor([0.9]),
             labels=torch.tensor([0])),
        dict(video_id="v2", segments=torch.tensor([[0.0, 10.0]], dtype=torch.float64), scores=torch.tensor([0.8]),
             labels=torch.tensor([0])),
    ])
    metric.process({}, [dict(video_id="v1", segments=torch.tensor([[20.0, 29.0], [1.0, 3.0]]),
                             scores=torch.tensor([0.7, 0.1]), labels=torch.tensor([1, 2]))])
    metrics = metric.evaluate(3)
    assert list(metrics) == ["mAP@0.3", "mAP@0.5", "mAP@0.7", "average_mAP"]
    # A: TP (0.9) then a tIoU-1/3 hit: at 0.3 both TP -> 1; at 0.5/0.7 -> 1/2. B: tIoU 0.9 -> 1.
    assert metrics["mAP@0.3"] == pytest.approx(1.0)
    assert metrics["mAP@0.5"] == pytest.approx(0.75)
    assert metrics["mAP@0.7"] == pytest.approx(0.75)
    assert metrics["average_mAP"] == pytest.approx(2.5 / 3)
    doc = json.loads(out.read_text())
    assert sorted(doc["results"]) == ["v1", "v2"]
    assert [d["label"] for d in doc["results"]["v1"]] == ["A", "B", "C"]
    assert doc["results"]["v1"][1] == {"label": "B", "score": pytest.approx(0.7), "segment": [20.0, 29.0]}


def test_metric_key_names():
    from tad.eval.metric import metric_key

    assert metric_key(0.3) == "mAP@0.3" and metric_key(np.float64(0.55)) == "mAP@0.55"


def test_import_tad_eval_stays_light():
    code = ("import sys, tad.eval, tad.eval.annotations, tad.eval.results, tad.eval.detection; "
            "bad = [m for m in ('torch', 'mmengine', 'matplotlib') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_metric_needs_ann_file():
    from tad.errors import TadInputError
    from tad.eval.metric import DetectionMAP

    with pytest.raises(TadInputError, match="ann_file is not set"):
        DetectionMAP(ann_file=None)
