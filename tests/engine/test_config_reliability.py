"""Issue 15, training side: unknown or mistyped config keys, resume from a mismatched model,
truncated checkpoints named when skipped, last_checkpoint resolved inside the work dir."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tad.cli import main
from tad.engine.runner import build_runner, find_resume_checkpoint, load_config
from tad.errors import TadInputError


@pytest.mark.parametrize("option, line", [
    ("max_epochz=3", "unknown config key 'max_epochz' (did you mean 'max_epochs'?)"),
    ("model.embed_dimm=64", "unknown config key 'model.embed_dimm' (did you mean 'model.embed_dim'?)"),
    ("modle.embed_dim=64", "unknown config key 'modle.embed_dim' (did you mean 'model.embed_dim'?)"),
    ("model.encoder.num_levelz=2", "unknown config key 'model.encoder.num_levelz' "
                                   "(did you mean 'model.encoder.num_levels'?)"),
    ("train_cfg.max_epochz=2", "unknown config key 'train_cfg.max_epochz' (did you mean 'train_cfg.max_epochs'?)"),
    ("train_dataloader.batch_sise=2", "unknown config key 'train_dataloader.batch_sise' "
                                      "(did you mean 'train_dataloader.batch_size'?)"),
    ("train_dataloader.dataset.ann_fil=a.json", "unknown config key 'train_dataloader.dataset.ann_fil' "
                                                "(did you mean 'train_dataloader.dataset.ann_file'?)"),
    ("zzzz=1", "unknown config key 'zzzz'"),
    ("max_epochs=abc", "max_epochs: must be a number, got 'abc'"),
    ("model.embed_dim=abc", "model.embed_dim: must be a number, got 'abc'"),
])
def test_train_bad_cfg_option_is_one_error_line(tiny_options, tmp_path, option, line):
    work_dir = tmp_path / "w"
    result = CliRunner().invoke(main, ["train", "tiny_test.py", "--work-dir", str(work_dir), "--device", "cpu",
                                       "--cfg-options", *tiny_options, option])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: --cfg-options: {line}"]
    assert not work_dir.exists()


def test_unknown_key_in_a_config_file_names_the_file(tmp_path):
    config = tmp_path / "mine.py"
    base = Path(load_config("tiny_test.py").filename)
    config.write_text(f"_base_ = [{str(base)!r}]\nmodel = dict(embed_dimm=16)\n")
    with pytest.raises(TadInputError) as err:
        load_config(config)
    assert str(err.value) == f"{config}: unknown config key 'model.embed_dimm' (did you mean 'model.embed_dim'?)"


def test_every_shipped_config_and_usual_overrides_pass():
    from importlib import resources

    root = resources.files("tad.configs")
    names = sorted(str(p.relative_to(root)) for p in Path(str(root)).rglob("*.py")
                   if not any(part.startswith("_") for part in p.relative_to(root).parts))
    assert "stpt/thumos14_i3d.py" in names and "stpt/activitynet13_tsp.py" in names
    for name in names:
        load_config(name)
    load_config("tiny_test.py", ["model.embed_dim=64", "max_epochs=3", "train_cfg.max_epochs=1",
                                 "train_dataloader.batch_size=4", "model.spatial_grid=2", "ann_file=x.json",
                                 "default_hooks.logger.interval=50", "train_dataloader.num_workers=1",
                                 "optim_wrapper.optimizer.lr=0.01", "classes=['a','b','c']", "work_dir=w",
                                 "default_hooks.checkpoint.save_best=None"])


def _save(path: Path, value: int) -> Path:
    torch.save({"state_dict": {"w": torch.tensor([value])}}, path)
    return path


def test_copied_work_dir_resumes_from_its_own_checkpoint(tmp_path):
    original = tmp_path / "run"
    original.mkdir()
    _save(original / "epoch_1.pth", 1)
    (original / "last_checkpoint").write_text(str(original / "epoch_1.pth"))  # mmengine writes absolute paths
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    assert find_resume_checkpoint(copy) == copy / "epoch_1.pth"
    shutil.rmtree(original)  # moved: still resumes
    assert find_resume_checkpoint(copy) == copy / "epoch_1.pth"


def test_truncated_newest_checkpoint_is_named_when_skipped(tiny_dataset, tmp_path, capsys):
    ann, store = tiny_dataset
    work_dir = tmp_path / "run"
    work_dir.mkdir()
    _save(work_dir / "epoch_1.pth", 1)
    newest = _save(work_dir / "epoch_2.pth", 2)
    newest.write_bytes(newest.read_bytes()[:40])  # killed while saving
    (work_dir / "last_checkpoint").write_text(str(newest))
    notes: list[str] = []
    assert find_resume_checkpoint(work_dir, notes) == work_dir / "epoch_1.pth"
    assert notes == [f"{newest}: skipped, truncated (not a whole checkpoint: the run was probably killed while "
                     "saving it)"]
    cfg = load_config("tiny_test.py", [f"ann_file={ann}", f"feature_store={store}"])
    build_runner(cfg, work_dir=work_dir, resume=True, device="cpu")
    err = capsys.readouterr().err
    assert f"resume: {newest}: skipped, truncated" in err
    assert f"resume: resuming from {work_dir / 'epoch_1.pth'}" in err


@pytest.mark.slow
def test_resume_with_a_mismatched_model_is_one_error_line(trained_run, tiny_options, tmp_path):
    work_dir = tmp_path / "run"
    shutil.copytree(trained_run[0], work_dir)
    result = CliRunner().invoke(main, ["train", "tiny_test.py", "--work-dir", str(work_dir), "--resume",
                                       "--device", "cpu", "--cfg-options", *tiny_options, "model.embed_dim=64",
                                       "train_cfg.max_epochs=2"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1  # (mmengine's own log lines come before it)
    last = errors[0]
    assert last.startswith(f"Error: {work_dir / 'epoch_1.pth'}: checkpoint does not match the config's model: ")
    assert "shape mismatches (size mismatch for " in last and "Traceback" not in result.output
