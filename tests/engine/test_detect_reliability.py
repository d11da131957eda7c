"""Issue 15, `tad detect`: the right flag named, the video named, outputs never over inputs, exit 3."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tad.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))
from extract_video_utils import make_video  # noqa: E402


@pytest.fixture(scope="module")
def detector_ckpt(tmp_path_factory) -> Path:
    """An untrained tiny_test.py detector, saved as a plain weights-only checkpoint."""
    from tad.engine.runner import load_config
    from tad.registry import MODELS

    cfg = load_config("tiny_test.py")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp("det") / "det.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": ["jump", "throw", "run"]}}},
               path)
    return path


@pytest.fixture(scope="module")
def small_video(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("vid") / "clip.mp4", num_frames=60)


def _detect(*args: str):
    return CliRunner().invoke(main, ["detect", *args, "--config", "tiny_test.py", "--device", "cpu",
                                     "--workers", "0"])


def test_missing_backbone_checkpoint_names_that_flag(detector_ckpt, small_video, tmp_path):
    result = _detect(str(small_video), "--checkpoint", str(detector_ckpt), "-o", str(tmp_path / "p.json"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --backbone-checkpoint: no backbone checkpoint given; pass --backbone-checkpoint CKPT, or "
        "--random-init to extract with untrained (seeded) weights"]


def test_output_over_video_or_checkpoint_is_refused(detector_ckpt, small_video, tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(small_video.read_bytes())
    before = video.read_bytes()
    result = _detect(str(video), "--checkpoint", str(detector_ckpt), "--random-init", "-o", str(tmp_path / "." / "v.mp4"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {tmp_path / '.' / 'v.mp4'}: -o is one of the inputs (VIDEOS); refusing to overwrite it"]
    assert video.read_bytes() == before
    ckpt_before = detector_ckpt.read_bytes()
    result = _detect(str(video), "--checkpoint", str(detector_ckpt), "--random-init", "--features-out",
                     str(detector_ckpt), "-o", str(tmp_path / "p.json"))
    assert result.exit_code == 1 and "--features-out is one of the inputs (--checkpoint)" in result.output
    assert detector_ckpt.read_bytes() == ckpt_before and not (tmp_path / "p.json").exists()


def test_non_video_input_is_named(detector_ckpt, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    result = _detect(str(fake), "--checkpoint", str(detector_ckpt), "--random-init", "-o", str(tmp_path / "p.json"))
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {fake}: cannot decode as video"), result.output
    assert "features.h5" not in result.output and "Traceback" not in result.output


def test_some_videos_failed_exit_status_3_and_the_rest_written(detector_ckpt, small_video, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    out = tmp_path / "p.json"
    result = _detect(str(small_video), str(fake), "--checkpoint", str(detector_ckpt), "--random-init", "-o", str(out))
    assert result.exit_code == 3, result.output
    assert f"{fake}: cannot decode as video" in result.stderr
    assert "1 videos" in result.stdout and "1 of 2 videos failed" in result.stderr
    from tad.eval.results import load_predictions

    ids = set(load_predictions(out, classes=["jump", "throw", "run"]))
    assert len(ids) == 1 and ids.pop().endswith("clip")
    help_text = CliRunner().invoke(main, ["detect", "--help"]).output
    assert "Exit status: 0" in help_text and "TRUSTED" in help_text
