"""Config layout: configs/<method>/<dataset>_<features>.py over _base_/datasets/<dataset>/<features>.py;
short names, method paths and old names all resolve; the engine knows no dataset key."""
from __future__ import annotations

from pathlib import Path

import pytest

from tad.configs import OLD_NAMES, evaluator_config, find_config, shipped_configs
from tad.engine.runner import load_config, resolve_config_path
from tad.errors import TadInputError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_configs_follow_the_method_dataset_features_layout():
    shipped = shipped_configs()
    for name in ("stpt/thumos14_i3d", "stpt/thumos14_tada2d", "stpt/thumos14_slowfast", "stpt/demo_tiny3d",
                 "stpt/activitynet13_tsp", "stpt/activitynet13_tsp_multiclass"):
        assert name in shipped, name
    for name in ("tiny_test", "thumos14_stpt_i3d", "demo_stpt"):  # moved or renamed
        assert name not in shipped
    for dataset_base in ("thumos14/i3d.py", "thumos14/tada2d.py", "thumos14/slowfast.py", "activitynet/tsp.py"):
        assert (REPO / "configs" / "_base_" / "datasets" / dataset_base).is_file()


@pytest.mark.parametrize("old,new", sorted(OLD_NAMES.items()))
def test_old_names_resolve_to_the_same_config(old, new):
    by_old, by_new = load_config(old + ".py"), load_config(new)
    assert resolve_config_path(old) == resolve_config_path(new + ".py") == find_config(new.split("/")[1])
    assert by_old.model.to_dict() == by_new.model.to_dict()
    assert by_old.train_dataloader.to_dict() == by_new.train_dataloader.to_dict()


def test_old_thumos_names_keep_their_resolved_values():
    cfg = load_config("thumos14_stpt_slowfast.py")
    assert cfg.model.in_channels == 2304 and cfg.extract.backbone == "slowfast_r50_8x8"
    assert cfg.train_dataloader.dataset.max_seq_len == 2304 and cfg.test_evaluator.tiou_thresholds == \
        [0.3, 0.4, 0.5, 0.6, 0.7]
    assert cfg.feature_store == "data/thumos14/slowfast_features.h5"


def test_old_dataset_base_name_still_works_for_configs_that_inherit_it(tmp_path):
    mine = tmp_path / "mine.py"
    base = REPO / "configs" / "_base_" / "datasets" / "thumos14_features.py"
    mine.write_text(f"_base_ = ['{base}']\nnum_classes = 20\n")
    cfg = load_config(mine)
    assert cfg.train_dataloader.dataset.type == "FeatureDataset" and cfg.val_evaluator.type == "DetectionMAP"


def test_test_configs_are_not_shipped_but_resolve_in_a_checkout():
    path = resolve_config_path("tiny_test.py")
    assert path == REPO / "tests" / "configs" / "tiny_test.py"
    assert not (REPO / "configs" / "tiny_test.py").exists()


def test_unknown_names_and_ambiguity_are_one_line_errors(monkeypatch):
    import tad.configs as configs

    with pytest.raises(TadInputError, match="config not found"):
        resolve_config_path("no_such_config")
    fake = {"a/x": Path("a/x.py"), "b/x": Path("b/x.py")}
    monkeypatch.setattr(configs, "shipped_configs", lambda: fake)
    monkeypatch.setattr(configs, "_root", lambda: Path("."))
    with pytest.raises(TadInputError, match=r"ambiguous \(a/x.py, b/x.py\)"):
        resolve_config_path("x")


def test_engine_knows_no_dataset_key():
    source = (REPO / "tad" / "engine" / "runner.py").read_text()
    for key in ("_DATASET_KEYS", "_LOADER_SUBSETS", '"ann_file"', '"feature_store"', "load_annotations",
                "FeatureStore"):
        assert key not in source, key


def test_dataset_class_fills_its_own_keys(tmp_path):
    from tad.datasets.feature_dataset import FeatureDataset

    seen = []

    class Recorder(FeatureDataset):
        @classmethod
        def fill_config(cls, dataset_cfg, cfg, split):
            seen.append(split)
            dataset_cfg["marker"] = split

    from tad.registry import DATASETS

    DATASETS.register_module(name="RecorderDataset", module=Recorder, force=True)
    cfg = load_config("tiny_test.py", ["train_dataloader.dataset.type=RecorderDataset",
                                       "test_dataloader.dataset.type=RecorderDataset"])
    assert seen == ["train", "test"]
    assert cfg.train_dataloader.dataset.marker == "train" and cfg.test_dataloader.dataset.marker == "test"
    assert cfg.train_dataloader.dataset.ann_file is None  # the recorder did not copy it
    assert cfg.val_dataloader.dataset.ann_file == cfg.ann_file  # FeatureDataset did


@pytest.mark.parametrize("dataset,thresholds", [
    ("thumos14", [0.3, 0.4, 0.5, 0.6, 0.7]),
    ("activitynet", [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]),
    ("epic", [0.1, 0.2, 0.3, 0.4, 0.5]),
    ("multithumos", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
])
def test_evaluator_presets(dataset, thresholds):
    from mmengine.config import Config

    cfg = Config.fromfile(str(evaluator_config(dataset)))
    assert cfg.test_evaluator.tiou_thresholds == cfg.val_evaluator.tiou_thresholds == thresholds
