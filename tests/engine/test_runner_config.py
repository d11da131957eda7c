from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tad.engine.runner import (CPUAutocastOptimWrapper, build_runner, find_best_checkpoint, find_resume_checkpoint,
                               load_config, resolve_config_path)
from tad.errors import TadInputError

SHIPPED = ["thumos14_i3d.py", "thumos14_tada2d.py", "thumos14_slowfast.py", "tiny_test.py"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_by_bare_name(name):
    cfg = load_config(name)
    assert resolve_config_path(name).parent.name == ("configs" if name == "tiny_test.py" else "stpt")
    assert cfg.default_scope == "tad" and cfg.model.type == "STPTDetector"
    train = cfg.train_dataloader.dataset
    assert train.type == "FeatureDataset" and train.subset == "validation" and train.training
    assert cfg.test_dataloader.dataset.subset == "test" and cfg.test_evaluator.type == "DetectionMAP"
    assert train.ann_file == cfg.ann_file == cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file
    assert cfg.model.num_classes == cfg.num_classes


def test_feature_dims_of_thumos_configs():
    assert load_config("thumos14_stpt_i3d").model.in_channels == 2048
    assert load_config("thumos14_stpt_tada2d").model.in_channels == 2048
    slowfast = load_config("thumos14_stpt_slowfast")
    assert slowfast.model.in_channels == 2304 and slowfast.extract.backbone == "slowfast_r50_8x8"
    assert load_config("thumos14_stpt_i3d").model.max_seq_len == 2304


def test_top_level_cfg_options_reach_datasets_and_evaluators():
    cfg = load_config("tiny_test.py", ["ann_file=/data/a.json", "feature_store=/data/f.h5", "test_subset=holdout",
                                       "model.embed_dim=48"])
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        assert cfg[loader].dataset.ann_file == "/data/a.json"
        assert cfg[loader].dataset.feature_store == "/data/f.h5"
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == "/data/a.json"
    assert cfg.test_dataloader.dataset.subset == cfg.test_evaluator.subset == "holdout"
    assert cfg.train_dataloader.dataset.max_seq_len == 64 and cfg.model.embed_dim == 48


def test_missing_and_invalid_configs_are_one_line_errors(tmp_path):
    with pytest.raises(TadInputError, match="nope.py: config not found"):
        load_config("nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("model = dict(type='STPTDetector'\n")
    with pytest.raises(TadInputError, match="invalid config") as info:
        load_config(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(TadInputError, match="key=value"):
        load_config("tiny_test.py", ["no_equals_sign"])


def test_build_runner_reports_missing_data_files(tmp_path):
    cfg = load_config("tiny_test.py", [f"ann_file={tmp_path / 'missing.json'}"])
    with pytest.raises(TadInputError, match=r"missing.json: ann_file not found \(set it with --cfg-options"):
        build_runner(cfg, work_dir=tmp_path / "w")


def test_build_runner_reports_feature_dim_mismatch(tiny_dataset, tmp_path):
    ann, store = tiny_dataset
    cfg = load_config("tiny_test.py", [f"ann_file={ann}", f"feature_store={store}", "model.in_channels=32"])
    with pytest.raises(TadInputError, match="features are 16-d but the model expects in_channels=32"):
        build_runner(cfg, work_dir=tmp_path / "w")


def test_build_runner_applies_command_line_choices(tiny_options, tmp_path):
    cfg = load_config("tiny_test.py", tiny_options)
    runner = build_runner(cfg, work_dir=tmp_path / "w", seed=7, amp=True, device="cpu")
    assert Path(runner.work_dir) == tmp_path / "w"
    assert runner.cfg.optim_wrapper.type == "CPUAutocastOptimWrapper"
    assert runner.cfg.randomness.seed == 7 and runner.seed == 7
    assert cfg.optim_wrapper.type == "OptimWrapper"  # the caller's config is not modified


def test_cpu_autocast_optim_wrapper_runs_bf16():
    model = torch.nn.Linear(4, 2)
    wrapper = CPUAutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(before, model.weight)


def _save(path: Path, value: int) -> Path:
    torch.save({"state_dict": {"w": torch.tensor([value])}}, path)
    return path


def test_resume_checkpoint_skips_truncated_files(tmp_path):
    _save(tmp_path / "epoch_1.pth", 1)
    good2 = _save(tmp_path / "epoch_2.pth", 2)
    assert find_resume_checkpoint(tmp_path) == good2  # no last_checkpoint marker: newest whole epoch
    data = (tmp_path / "epoch_3.pth")
    _save(data, 3)
    data.write_bytes(data.read_bytes()[:40])  # killed while saving
    (tmp_path / "last_checkpoint").write_text(str(data))
    assert find_resume_checkpoint(tmp_path) == good2
    (tmp_path / "last_checkpoint").write_text("")  # killed while writing the marker
    assert find_resume_checkpoint(tmp_path) == good2
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_1.pth"))
    assert find_resume_checkpoint(tmp_path) == tmp_path / "epoch_1.pth"


def test_best_checkpoint_prefers_best_average_map(tmp_path):
    with pytest.raises(TadInputError, match="no checkpoint"):
        find_best_checkpoint(tmp_path)
    _save(tmp_path / "epoch_1.pth", 1)
    assert find_best_checkpoint(tmp_path) == tmp_path / "epoch_1.pth"
    best = _save(tmp_path / "best_average_mAP_epoch_1.pth", 1)
    _save(tmp_path / "epoch_2.pth", 2)
    assert find_best_checkpoint(tmp_path) == best


class _BrokenDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise TadInputError("f.h5 video v1", "features contain 3 NaN/inf values")


def test_input_error_is_recovered_from_a_dataloader_worker():
    from tad.engine.runner import input_error_from_worker

    with pytest.raises(RuntimeError) as info:
        list(torch.utils.data.DataLoader(_BrokenDataset(), num_workers=1))
    error = input_error_from_worker(info.value)
    assert isinstance(error, TadInputError)
    assert str(error) == "f.h5 video v1: features contain 3 NaN/inf values"
    assert input_error_from_worker(RuntimeError("something else")) is None


def test_epoch_options_move_the_lr_schedule():
    cfg = load_config("thumos14_stpt_i3d.py", ["max_epochs=12", "warmup_epochs=2"])
    warmup, cosine = cfg.param_scheduler
    assert cfg.train_cfg.max_epochs == 12 and warmup.end == 2
    assert (cosine.begin, cosine.end, cosine.T_max) == (2, 12, 10)
    cfg = load_config("tiny_test.py", ["train_cfg.max_epochs=4"])
    warmup, cosine = cfg.param_scheduler
    assert cfg.train_cfg.max_epochs == 4 and warmup.end == 1 and (cosine.begin, cosine.end, cosine.T_max) == (1, 4, 3)


def test_run_shorter_than_warmup_keeps_only_the_warmup():
    cfg = load_config("tiny_test.py", ["train_cfg.max_epochs=1"])
    assert [s.type for s in cfg.param_scheduler] == ["LinearLR"] and cfg.param_scheduler[0].end == 1


def test_build_runner_reports_class_count_mismatch(tiny_options, tmp_path):
    cfg = load_config("tiny_test.py", tiny_options + ["model.num_classes=5"])
    with pytest.raises(TadInputError, match=r"3 classes but the model has num_classes=5 \(set --cfg-options"):
        build_runner(cfg, work_dir=tmp_path / "w")


def test_split_names_resolve_to_config_subsets():
    from tad.engine.inference import resolve_subset

    cfg = load_config("thumos14_stpt_i3d.py", ["val_subset=holdout"])
    assert resolve_subset(cfg, "test") == "test" and resolve_subset(cfg, "train") == "validation"
    assert resolve_subset(cfg, "val") == "holdout" and resolve_subset(cfg, "Validation") == "Validation"


def test_checkpoint_of_another_model_is_a_one_line_error(tmp_path):
    from tad.engine.inference import load_detector
    from tad.registry import MODELS

    cfg = load_config("tiny_test.py")
    other = MODELS.build(dict(cfg.model, embed_dim=16))
    torch.save({"state_dict": other.state_dict()}, tmp_path / "other.pth")
    with pytest.raises(TadInputError, match=r"other.pth: checkpoint does not match the config's model: \d+ shape"):
        load_detector(cfg, tmp_path / "other.pth")
    torch.save({"state_dict": {"foo": torch.zeros(1)}}, tmp_path / "foo.pth")
    with pytest.raises(TadInputError, match="key problems"):
        load_detector(cfg, tmp_path / "foo.pth")
