"""`tad init-config`: choices follow the data (short videos / long videos / ActivityNet-like /
multi-label), every choice is commented, and the config written for 20-second videos with
1-second actions trains as it is to a high mAP."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tad.cli import main
from tad.datasets.config_init import DataStatistics, choose_settings, data_statistics, render_config
from tad.engine.runner import load_config
from tad.synthetic_features import make_synthetic_store, preset_config, random_layout


def _stats(video_steps, action_steps, fraction=0.05, overlapping=False, n_train=10) -> DataStatistics:
    return DataStatistics(ann_file="a.json", feature_store="f.h5", classes=["a", "b"], subsets={"train": n_train},
                          train_subset="train", test_subset="test", num_train_videos=n_train,
                          video_steps=np.asarray(video_steps), action_steps=np.asarray(action_steps, float),
                          actions_per_video=5, step_seconds=0.4, in_channels=16, spatial_grid=None,
                          overlapping=overlapping, video_fraction=fraction)


def test_short_videos_short_actions_whole_videos_shallow_pyramid():
    # 20-s videos, 1-s actions at 2.5 steps/s: 50 steps, actions of 2-3 steps
    s = choose_settings(_stats([48, 50, 52], [2.0, 2.5, 3.0]))
    v = s.values
    assert v["strategy"] == "window" and v["max_seq_len"] == 64 and v["crop_ratio"] == [0.9, 1.0]
    assert v["num_levels"] == 2 and v["regression_ranges"] == [(0, 4), (4, 10000)]
    assert v["protocol"] == "thumos14" and "multi_label" not in v


def test_long_videos_long_actions_sliding_resize():
    thumos_like = choose_settings(_stats([3000, 5000, 8000], [10, 30, 200])).values
    assert thumos_like["strategy"] == "window" and thumos_like["max_seq_len"] == 2304
    assert thumos_like["num_levels"] == 6 and thumos_like["regression_ranges"][-1] == (64, 10000)
    hours = choose_settings(_stats([3000, 20000], [2, 5, 10])).values
    assert hours["strategy"] == "sliding" and hours["window_overlap"] == 0.25
    anet_like = choose_settings(_stats([1500, 2000], [600, 900], fraction=0.4)).values
    assert anet_like["strategy"] == "resize" and anet_like["max_seq_len"] == 192 and anet_like["num_levels"] == 6


def test_multi_label_protocol_and_targets():
    v = choose_settings(_stats([100, 120], [5, 10, 40], overlapping=True)).values
    assert v["protocol"] == "multithumos" and v["multi_label"] is True


@pytest.fixture(scope="module")
def short_set(tmp_path_factory) -> tuple[Path, Path]:
    """20-second videos with 1-second actions (synthetic features, 7.5 steps/s)."""
    root = tmp_path_factory.mktemp("init")
    layout = random_layout(num_videos=14, num_classes=3, duration_range=(18.0, 22.0), segments_per_video=(3, 5),
                           segment_length=(0.8, 1.2), seed=1, test_fraction=0.3)
    summary = make_synthetic_store(layout, root / "features.h5", preset_config("easy", feature_dim=16, seed=0),
                                   ann_out=root / "ann.json")
    return summary.annotations, summary.store


def test_written_config_is_commented_and_loads(short_set, tmp_path):
    ann, store = short_set
    out = tmp_path / "my_config.py"
    res = CliRunner().invoke(main, ["init-config", "--annotations", str(ann), "--features", str(store), "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    for key in ("num_classes = 3", "max_seq_len = 176", "num_levels=4", "regression_ranges=[(0, 4), (4, 8), (8, 16), (16, 10000)]"):
        assert key in text, key
    # each data-driven choice carries its reason on its line or the line above
    lines = text.splitlines()
    for key in ("max_seq_len =", "num_levels=", "regression_ranges=", "embed_dim=", "max_epochs =", "lr="):
        i = next(k for k, line in enumerate(lines) if key in line)
        assert "#" in lines[i] or lines[i - 1].lstrip().startswith("#"), lines[i]
    cfg = load_config(out)
    assert cfg.model.num_classes == 3 and cfg.model.in_channels == 16
    assert cfg.train_dataloader.dataset.subset == "Validation" and cfg.test_dataloader.dataset.subset == "Test"
    assert cfg.test_evaluator.tiou_thresholds == [0.3, 0.4, 0.5, 0.6, 0.7]
    # refuses to overwrite silently, or to write over an input
    res = CliRunner().invoke(main, ["init-config", "--annotations", str(ann), "--features", str(store), "-o", str(out)])
    assert res.exit_code != 0 and "pass --overwrite" in res.output
    res = CliRunner().invoke(main, ["init-config", "--annotations", str(ann), "--features", str(store), "-o", str(ann)])
    assert res.exit_code != 0 and "refusing to overwrite" in res.output


def test_multi_label_data_detected(tmp_path):
    from shape_layouts import multi_label_layout

    summary = make_synthetic_store(multi_label_layout(num_videos=6), tmp_path / "f.h5",
                                   preset_config("easy", feature_dim=8, seed=0), ann_out=tmp_path / "a.json")
    stats = data_statistics(summary.annotations, summary.store)
    assert stats.overlapping and (stats.train_subset, stats.test_subset) == ("training", "testing")
    text = render_config(stats, choose_settings(stats), "a.json", "f.h5")
    assert "multi_label=True" in text and "evaluators/multithumos.py" in text


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_twenty_second_videos_train_as_written(short_set, tmp_path, monkeypatch, request):
    ann, store = short_set
    config = tmp_path / "my_config.py"
    # in this process with one torch thread, as the CLI subprocess ran (the README walkthrough test
    # runs `tad init-config`, `tad train` and `tad eval` as real commands)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    request.addfinalizer(lambda: torch.set_num_threads(threads))

    def tad(*args: str) -> None:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 0, f"tad {args[0]} failed:\n{result.output[-3000:]}\n{result.exception!r}"

    tad("init-config", "--annotations", str(ann), "--features", str(store), "-o", str(config))
    tad("train", str(config), "--work-dir", "run", "--seed", "0")
    from tad.engine.runner import find_best_checkpoint

    checkpoint = find_best_checkpoint(tmp_path / "run")
    tad("eval", str(config), str(checkpoint), "--out", "preds.json", "--metrics-out", "metrics.json")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # 3 classes, 1-s actions in 20-s videos: chance is near 0
    assert metrics["average_mAP"] > 0.6, metrics
