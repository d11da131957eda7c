from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from tad.cli import main
from tad.eval.annotations import load_annotations
from tad.eval.detection import evaluate_detections
from tad.eval.results import load_predictions


@pytest.mark.slow
def test_train_run_saves_epoch_and_best_checkpoints(trained_run):
    work_dir, best = trained_run
    assert best.name == "best_average_mAP_epoch_1.pth"
    assert (work_dir / "epoch_1.pth").is_file() and (work_dir / "last_checkpoint").is_file()
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    assert list(ckpt["meta"]["dataset_meta"]["classes"]) == ["jump", "throw", "run"]
    assert "ema_state_dict" in ckpt  # the EMA hook ran; state_dict holds the EMA weights
    logs = list(work_dir.glob("*/*.log"))
    assert logs and "average_mAP" in logs[0].read_text()


@pytest.mark.slow
def test_eval_cli_writes_predictions_metrics_and_table(trained_run, tiny_dataset, tiny_options, tmp_path):
    work_dir, best = trained_run
    ann_file, _ = tiny_dataset
    out, metrics = tmp_path / "preds.json", tmp_path / "metrics.json"
    result = CliRunner().invoke(main, ["eval", "tiny_test.py", str(best), "--out", str(out), "--metrics-out",
                                       str(metrics), "--device", "cpu", "--cfg-options", *tiny_options])
    assert result.exit_code == 0, result.output
    assert "mAP (%)" in result.output and "0.30" in result.output and "Avg" in result.output
    ann = load_annotations(ann_file)
    predictions = load_predictions(out, classes=ann.classes)
    assert set(predictions) == set(ann.subset("test"))
    assert all(0 <= seg["segment"][0] <= seg["segment"][1] <= ann.videos[vid].duration + 1e-6
               for vid, segs in predictions.items() for seg in segs)
    written = json.loads(metrics.read_text())
    assert set(written) >= {"tiou_thresholds", "mAP", "average_mAP", "per_class_AP"}
    rescored = evaluate_detections(ann, predictions, subset="test")
    assert written["average_mAP"] == pytest.approx(rescored.average_mAP, abs=1e-9)
    # the exported weights are the ones validation scored when it kept this checkpoint (EMA)
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    best_score = ckpt["message_hub"]["runtime_info"]["best_score"]
    assert written["average_mAP"] == pytest.approx(best_score, abs=1e-6)


def test_eval_cli_bad_checkpoint_is_one_line_error(tiny_options, tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, ["eval", "tiny_test.py", str(bad), "--out", str(tmp_path / "p.json"),
                                       "--cfg-options", *tiny_options])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "broken.pth" in lines[0]


@pytest.mark.slow
def test_eval_cli_missing_feature_store_is_one_line_error(trained_run, tiny_dataset, tmp_path):
    ann_file, _ = tiny_dataset
    result = CliRunner().invoke(main, ["eval", "tiny_test.py", str(trained_run[1]), "--cfg-options",
                                       f"ann_file={ann_file}", f"feature_store={tmp_path / 'none.h5'}"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'none.h5'}: feature_store not found " \
                                    "(set it with --cfg-options feature_store=PATH)"


@pytest.mark.slow
def test_detect_cli_runs_raw_videos_to_segments(trained_run, real_videos_dir, tmp_path):
    out = tmp_path / "detect.json"
    videos = [real_videos_dir / "highjump.mp4", real_videos_dir / "tennis26.mp4"]
    result = CliRunner().invoke(main, ["detect", *map(str, videos), "--config", "tiny_test.py", "--checkpoint",
                                       str(trained_run[1]), "--random-init", "--device", "cpu", "--workers", "0",
                                       "-o", str(out), "--features-out", str(tmp_path / "f.h5")])
    assert result.exit_code == 0, result.output
    assert "2 videos" in result.output
    predictions = load_predictions(out, classes=["jump", "throw", "run"])
    assert set(predictions) == {"highjump", "tennis26"}
    from tad.features.store import FeatureStore

    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == 16 and set(store.videos) == {"highjump", "tennis26"}
    for vid, segs in predictions.items():
        duration = store[vid].attrs["duration"]
        assert segs and all(0 <= s["segment"][0] <= s["segment"][1] <= duration + 1e-6 for s in segs)


def test_detect_cli_refuses_config_without_extract_settings(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    ckpt = tmp_path / "c.pth"
    ckpt.write_bytes(b"")
    result = CliRunner().invoke(main, ["detect", str(video), "--config", "thumos14_stpt_i3d.py",
                                       "--checkpoint", str(ckpt), "-o", str(tmp_path / "p.json")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "no extract=dict" in result.output


@pytest.mark.slow
def test_train_cli_nan_features_in_worker_is_one_line_error(tmp_path):
    import h5py

    from tiny_engine_data import make_tiny_dataset

    ann, store = make_tiny_dataset(tmp_path / "data", num_videos=2)
    with h5py.File(store, "r+") as h5:
        h5["videos/video_00/features"][5, 3] = float("nan")
    result = CliRunner().invoke(main, ["train", "tiny_test.py", "--work-dir", str(tmp_path / "w"), "--cfg-options",
                                       f"ann_file={ann}", f"feature_store={store}",
                                       "train_dataloader.num_workers=1", "train_dataloader.batch_size=1"])
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == f"Error: {store} video video_00: features contain 1 NaN/inf values; re-extract or repair this video"
