"""Issue 15: a payload pickled into a detector checkpoint never runs (tad eval, tad detect,
load_from=); mmengine's own checkpoint contents still load weights-only; --trust-checkpoint."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tad.cli import main
from tad.errors import TadInputError


class Payload:
    """Unpickling this creates a folder: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture
def model_state():
    from tad.engine.runner import load_config
    from tad.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(load_config("tiny_test.py").model).state_dict()


@pytest.fixture
def evil_ckpt(tmp_path, model_state) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": model_state, "meta": {"payload": Payload(marker)}}, path)
    return path, marker


def test_tad_eval_does_not_run_a_checkpoint_payload(evil_ckpt, tmp_path):
    path, marker = evil_ckpt
    result = CliRunner().invoke(main, ["eval", "tiny_test.py", str(path), "--out", str(tmp_path / "p.json"),
                                       "--device", "cpu"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: holds objects a weights-only load refuses")
    assert lines[0].endswith("if you trust this file, pass --trust-checkpoint")
    assert not marker.exists()
    assert "--trust-checkpoint" in CliRunner().invoke(main, ["eval", "--help"]).output


def test_tad_detect_does_not_run_a_checkpoint_payload(evil_ckpt, tmp_path):
    path, marker = evil_ckpt
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 64)
    result = CliRunner().invoke(main, ["detect", str(video), "--config", "tiny_test.py", "--checkpoint", str(path),
                                       "--random-init", "--device", "cpu", "-o", str(tmp_path / "p.json")])
    assert result.exit_code == 1 and "pass --trust-checkpoint" in result.output
    assert not marker.exists()
    help_text = CliRunner().invoke(main, ["detect", "--help"]).output
    assert "--trust-checkpoint" in help_text and "TRUSTED" in help_text


def test_load_from_goes_through_the_safe_loader(evil_ckpt):
    from mmengine.runner.checkpoint import CheckpointLoader

    import tad.engine.runner  # noqa: F401  (applies the mmengine fixes)

    path, marker = evil_ckpt
    with pytest.raises(TadInputError, match="pass --trust-checkpoint"):
        CheckpointLoader.load_checkpoint(str(path), map_location="cpu")
    assert not marker.exists()


def test_resume_trusts_only_the_runs_own_work_dir(evil_ckpt, tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader

    from tad.compat.safe_checkpoint import trust_directory

    path, marker = evil_ckpt
    other = tmp_path / "elsewhere"
    other.mkdir()
    trust_directory(other)
    with pytest.raises(TadInputError):
        CheckpointLoader.load_checkpoint(str(path), map_location="cpu")
    assert not marker.exists()
    work_dir = tmp_path / "run"
    work_dir.mkdir()
    own = work_dir / "epoch_1.pth"
    own.write_bytes(path.read_bytes())
    trust_directory(work_dir)  # what build_runner(resume=True) does for its work dir
    CheckpointLoader.load_checkpoint(str(own), map_location="cpu")
    assert marker.exists()  # a trusted file is a full pickle


def test_mmengine_checkpoint_contents_load_weights_only_and_trust_flag_works(model_state, tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    from tad.compat.safe_checkpoint import load_checkpoint

    buffer = HistoryBuffer()
    for value in (1.0, 2.0, 3.0):
        buffer.update(value)
    ckpt = {"state_dict": model_state,
            "meta": {"dataset_meta": {"classes": ("jump", "throw", "run")}, "seed": np.int64(3), "epoch": 1},
            "message_hub": {"log_scalars": {"train/loss": buffer}, "runtime_info": {"best_score": np.float64(0.5),
                                                                                   "arr": np.arange(4)}},
            "stats": buffer._statistics_methods if hasattr(buffer, "_statistics_methods") else {}}
    path = tmp_path / "epoch_1.pth"
    torch.save(ckpt, path)
    loaded = load_checkpoint(path, map_location="cpu")
    assert loaded["meta"]["dataset_meta"]["classes"] == ("jump", "throw", "run")
    assert loaded["message_hub"]["log_scalars"]["train/loss"].mean() == pytest.approx(2.0)
    np.testing.assert_array_equal(loaded["message_hub"]["runtime_info"]["arr"], np.arange(4))
    # eval with it: the weights load, prediction runs (then fails only on the missing data)
    result = CliRunner().invoke(main, ["eval", "tiny_test.py", str(path), "--out", str(tmp_path / "p.json"),
                                       "--device", "cpu", "--cfg-options", f"feature_store={tmp_path / 'none.h5'}"])
    assert result.exit_code == 1 and "ann_file not found" in result.output, result.output


def test_trust_checkpoint_flag_reads_a_pickle(evil_ckpt, tmp_path):
    path, marker = evil_ckpt
    result = CliRunner().invoke(main, ["eval", "tiny_test.py", str(path), "--out", str(tmp_path / "p.json"),
                                       "--device", "cpu", "--trust-checkpoint", "--cfg-options",
                                       f"feature_store={tmp_path / 'none.h5'}"])
    assert marker.exists()  # the user vouched for the file: it was unpickled
    assert result.exit_code == 1 and "ann_file not found" in result.output
