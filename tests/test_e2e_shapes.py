"""End to end per dataset shape, CPU-sized: the shipped EPIC-Kitchens-100 and Multi-THUMOS
configs (model width, window, epochs and learning rate shrunk to CPU size, everything else
as shipped) train on synthetic features laid out like the dataset, and score well above
chance on held-out videos. The real EPIC slice converts and trains.

Each test prints its average mAP and training time (``pytest -s`` shows them).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from tad.cli import main
from tad.synthetic_features import layout_from_annotations, make_synthetic_store, preset_config

sys.path.insert(0, str(Path(__file__).resolve().parent / "datasets"))
from shape_layouts import epic_like_layout, multi_label_layout  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EPIC_SLICE = REPO / "tests" / "data" / "epic100"

#: CPU size: what the tests change in a shipped config (model width, window, schedule, EMA)
CPU_SIZE = """
model = dict(in_channels={in_channels}, num_classes={num_classes}, max_seq_len={max_seq_len}, embed_dim=64,
             encoder=dict(num_heads=4, stem_blocks=1, drop_path=0.0), refinement=dict(hidden_dim=32))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = dict(num_workers=0, persistent_workers=False)
max_epochs = {epochs}
warmup_epochs = 2
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={epochs}, val_interval={epochs} + 1)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max={epochs} - 2, eta_min=1e-5, by_epoch=True, begin=2, end={epochs},
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval={epochs}, max_keep_ckpts=1, save_best=None))
custom_hooks = [dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.1,
                     update_buffers=True, priority='ABOVE_NORMAL')]
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0, deterministic=False)
"""


def _tad(*args: str, cwd: Path) -> Result:
    """`tad ARGS` run in ``cwd`` in this process with one torch thread (as the subprocess CLI runs in
    test_e2e_detection.py and the README walkthrough test, which cover the real command line)."""
    threads, before = torch.get_num_threads(), Path.cwd()
    torch.set_num_threads(1)
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(before)
        torch.set_num_threads(threads)
    assert result.exit_code == 0, f"tad {' '.join(args)} failed:\n{result.output[-3000:]}\n{result.exception!r}"
    return result


def _train_and_eval(shipped: str, tmp: Path, ann: Path, store: Path, num_classes: int, in_channels: int,
                    max_seq_len: int, epochs: int, split: str = "test") -> tuple[dict, float, Path]:
    from tad.configs import find_config

    config = tmp / "cpu_config.py"
    config.write_text(f"_base_ = [{str(find_config(shipped))!r}]\nann_file = {str(ann)!r}\n"
                      f"feature_store = {str(store)!r}\nnum_classes = {num_classes}\nmax_seq_len = {max_seq_len}\n"
                      + CPU_SIZE.format(in_channels=in_channels, num_classes=num_classes, max_seq_len=max_seq_len,
                                        epochs=epochs))
    t0 = time.perf_counter()
    _tad("train", str(config), "--work-dir", "work", "--seed", "0", cwd=tmp)
    train_seconds = time.perf_counter() - t0
    checkpoint = sorted((tmp / "work").glob("epoch_*.pth"))[-1]
    _tad("eval", str(config), str(checkpoint), "--split", split, "--out", "preds.json", "--metrics-out",
         "metrics.json", cwd=tmp)
    metrics = json.loads((tmp / "metrics.json").read_text())
    print(f"\n{shipped} at CPU size: average mAP {100 * metrics['average_mAP']:.2f} "
          f"(tIoU {metrics['tiou_thresholds']}), training {train_seconds:.1f} s")
    return metrics, train_seconds, tmp / "preds.json"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_epic_shaped_long_videos_dense_short_actions(tmp_path):
    layout = epic_like_layout(num_videos=9, num_classes=4, duration_range=(60.0, 80.0), seed=0)
    summary = make_synthetic_store(layout, tmp_path / "features.h5", preset_config("easy", feature_dim=16, seed=0),
                                   ann_out=tmp_path / "ann.json")
    per_video = [len(v.labels) for v in layout.videos.values()]
    assert min(per_video) >= 15  # dense: EPIC-like
    metrics, _, _ = _train_and_eval("epic100_verb_slowfast", tmp_path, summary.annotations, summary.store,
                                    num_classes=4, in_channels=16, max_seq_len=384, epochs=10, split="test")
    assert metrics["tiou_thresholds"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    # 4 classes, ~25 actions per video: chance is a few %
    assert metrics["average_mAP"] > 0.5, metrics


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_epic_slice_converts_and_trains(tmp_path):
    ann = tmp_path / "epic_verb.json"
    _tad("convert-annotations", str(EPIC_SLICE / "EPIC_100_train_slice.csv"),
         str(EPIC_SLICE / "EPIC_100_validation_slice.csv"), "--task", "verb", "-o", str(ann), cwd=tmp_path)
    from tad.eval.annotations import load_annotations

    annotations = load_annotations(ann)
    summary = make_synthetic_store(layout_from_annotations(annotations), tmp_path / "features.h5",
                                   preset_config("easy", feature_dim=16, seed=0), ann_out=tmp_path / "synth.json")
    check = _tad("check-data", str(ann), str(summary.store), "--quiet", cwd=tmp_path)
    assert "0 error(s)" in check.stdout
    # the three training videos of the slice, scored on themselves: the pipeline check
    metrics, _, preds = _train_and_eval("epic100_verb_slowfast", tmp_path, ann, summary.store,
                                        num_classes=len(annotations.classes), in_channels=16, max_seq_len=384,
                                        epochs=10, split="training")
    raw = json.loads(preds.read_text())["results"]
    assert set(raw) == {"P11_02", "P11_06", "P11_07"}
    assert {d["label"] for dets in raw.values() for d in dets} <= set(annotations.classes)
    assert metrics["average_mAP"] > 0.3, metrics


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_multi_label_overlaps_kept_and_learned(tmp_path):
    layout = multi_label_layout(num_videos=12, seed=0)
    summary = make_synthetic_store(layout, tmp_path / "features.h5", preset_config("easy", feature_dim=16, seed=0),
                                   ann_out=tmp_path / "ann.json")
    # the dataset keeps overlapping instances of different classes
    from tad.datasets.feature_dataset import FeatureDataset

    dataset = FeatureDataset(str(summary.annotations), str(summary.store), subset="training", training=False)
    item = dataset[0]["data_samples"]
    segs, labels = item["gt_segments"].numpy(), item["gt_labels"].numpy()
    vid = dataset.video_ids[0]
    assert len(labels) == len(layout.videos[vid].labels)
    inter = np.minimum(segs[:, None, 1], segs[None, :, 1]) - np.maximum(segs[:, None, 0], segs[None, :, 0])
    assert ((inter > 0) & (labels[:, None] != labels[None, :])).any()

    metrics, _, preds = _train_and_eval("multithumos_i3d", tmp_path, summary.annotations, summary.store,
                                        num_classes=4, in_channels=16, max_seq_len=352, epochs=12, split="testing")
    assert metrics["tiou_thresholds"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert metrics["average_mAP"] > 0.5, metrics
    # both the long context class and the short classes inside it are found (per-class AP)
    per_class = {name: float(np.mean(ap)) for name, ap in metrics["per_class_AP"].items()}
    assert per_class["Game"] > 0.5 and min(per_class[c] for c in per_class if c != "Game") > 0.3, per_class
    # predictions keep overlapping segments of different classes
    results = json.loads(preds.read_text())["results"]
    found_overlap = False
    for dets in results.values():
        top = [d for d in dets if d["score"] > 0.3]
        for i, a in enumerate(top):
            for b in top[i + 1:]:
                if a["label"] != b["label"] and min(a["segment"][1], b["segment"][1]) > max(a["segment"][0], b["segment"][0]):
                    found_overlap = True
    assert found_overlap
