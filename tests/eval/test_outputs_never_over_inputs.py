"""Issue 15: no command writes its output over one of its inputs (score, eval, visualize);
resolved paths are compared, so './' and symlinks count."""
from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from tad.cli import main


@pytest.fixture
def example(tmp_path) -> tuple[Path, Path]:
    data = Path(str(resources.files("tad") / "data"))
    preds, ann = tmp_path / "P.json", tmp_path / "A.json"
    shutil.copy(data / "example_predictions.json", preds)
    shutil.copy(data / "example_annotations.json", ann)
    return preds, ann


def _unchanged(*paths: Path):
    before = {p: p.read_bytes() for p in paths}
    return lambda: all(p.read_bytes() == before[p] for p in paths)


@pytest.mark.parametrize("flag", ["--metrics-out", "--plot"])
@pytest.mark.parametrize("target", ["P", "A", "./P", "link-A"])
def test_score_refuses_output_over_predictions_or_annotations(example, tmp_path, flag, target):
    preds, ann = example
    same = _unchanged(preds, ann)
    os.symlink(ann, tmp_path / "link-A.json")
    out = {"P": preds, "A": ann, "./P": tmp_path / "." / "P.json", "link-A": tmp_path / "link-A.json"}[target]
    result = CliRunner().invoke(main, ["score", str(preds), "-a", str(ann), "-s", "test", flag, str(out)])
    assert result.exit_code == 1
    which = "--annotations" if target.endswith("A") else "PREDICTIONS"
    assert result.output.strip().splitlines() == [
        f"Error: {out}: {flag} is one of the inputs ({which}); refusing to overwrite it"]
    assert same()


def test_score_still_writes_to_a_new_path(example, tmp_path):
    preds, ann = example
    result = CliRunner().invoke(main, ["score", str(preds), "-a", str(ann), "-s", "test", "--metrics-out",
                                       str(tmp_path / "m.json")])
    assert result.exit_code == 0 and (tmp_path / "m.json").is_file()


def test_eval_refuses_out_over_annotations_checkpoint_or_store(example, tmp_path):
    _, ann = example
    ckpt = tmp_path / "c.pth"
    ckpt.write_bytes(b"weights")
    store = tmp_path / "f.h5"
    store.write_bytes(b"store")
    same = _unchanged(ann, ckpt, store)
    base = ["eval", "tiny_test.py", str(ckpt), "--device", "cpu", "--cfg-options", f"ann_file={ann}",
            f"feature_store={store}"]
    for flag, target, which in [("--out", ann, "ann_file"), ("--out", ckpt, "CHECKPOINT"),
                                ("--metrics-out", store, "feature_store")]:
        result = CliRunner().invoke(main, base + [flag, str(target)] + (["--out", str(tmp_path / "p.json")]
                                                                       if flag != "--out" else []))
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines() == [
            f"Error: {target}: {flag} is one of the inputs ({which}); refusing to overwrite it"]
    assert same()


def test_visualize_refuses_out_over_predictions(example):
    preds, ann = example
    same = _unchanged(preds, ann)
    link = preds.parent / "P.png"
    os.symlink(preds, link)  # a .png name that is really the predictions file
    result = CliRunner().invoke(main, ["visualize", str(preds), "--annotations", str(ann), "--video",
                                       "video_test_0000004", "-o", str(link)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {link}: -o is one of the inputs (PREDICTIONS); refusing to overwrite it")
    assert same()
