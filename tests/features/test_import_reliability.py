"""Issue 15, `tad import-features`: files that only look like features are listed with a
correct one-line reason, the run goes on, no parts are left behind, exit status 3."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tad.cli import main
from tad.features.store import FeatureStore
from tad.features.store_writer import parts_dir_for


def _good(path, steps: int = 20, seed: int = 0):
    np.save(path, np.random.default_rng(seed).standard_normal((steps, 8)).astype(np.float32))


def _import(src, out, *extra):
    return CliRunner().invoke(main, ["import-features", str(src), "-o", str(out), "--fps", "30", "--quiet", *extra])


@pytest.mark.parametrize("name, make, reason", [
    ("zip.npy", lambda p: np.savez(p.with_suffix(".tmp.npz"), feats=np.zeros((4, 8))) or
        p.with_suffix(".tmp.npz").rename(p), "is a zip archive (.npz), not an .npy array: use --ext npz"),
    ("text.npy", lambda p: p.write_text("1 2 3\n4 5 6\n"),
     "not an .npy array (no NumPy header; a text file or another format?)"),
    ("pickle.npy", lambda p: p.write_bytes(b"\x80\x04K\x01."),
     "holds pickled Python objects, not an .npy array (not loaded: a pickle can run code)"),
    ("empty.npy", lambda p: p.write_bytes(b""), "empty file, not an .npy array"),
])
def test_files_named_npy_that_are_not_arrays(tmp_path, name, make, reason):
    src = tmp_path / "feats"
    src.mkdir()
    _good(src / "good.npy")
    make(src / name)
    out = tmp_path / "f.h5"
    result = _import(src, out)
    assert result.exit_code == 3, result.output
    assert f"failed: {(src / name).resolve()}: {reason}" in result.output
    assert "imported 1, skipped 0 (already stored), failed 1" in result.output
    assert "Traceback" not in result.output and "allow_pickle" not in result.output
    assert FeatureStore(out).videos == ["good"]
    assert FeatureStore(out).failed == {str((src / name).resolve()): reason}
    assert not parts_dir_for(out).exists()


def test_pt_holding_a_numpy_array_is_listed_and_the_run_goes_on(tmp_path):
    src = tmp_path / "feats"
    src.mkdir()
    torch.save(torch.randn(20, 8), src / "good.pt")
    torch.save(np.zeros((20, 8), dtype=np.float32), src / "numpy.pt")
    torch.save({"feats": torch.randn(20, 8)}, src / "dict.pt")
    out = tmp_path / "f.h5"
    result = _import(src, out, "--ext", "pt")
    assert result.exit_code == 3, result.output
    line = [ln for ln in result.output.splitlines() if "numpy.pt" in ln]
    assert len(line) == 1 and line[0].startswith(f"failed: {(src / 'numpy.pt').resolve()}: holds Python objects "
                                                 "other than tensors (e.g. a numpy array)")
    assert FeatureStore(out).videos == ["dict", "good"]
    assert not parts_dir_for(out).exists()


def test_output_over_an_input_file_is_refused(tmp_path):
    src = tmp_path / "feats"
    src.mkdir()
    _good(src / "a.npy")
    before = (src / "a.npy").read_bytes()
    result = _import(src, src / "." / "a.npy")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {src / '.' / 'a.npy'}: -o is one of the inputs (NPY_DIR); refusing to overwrite it"]
    ann = tmp_path / "ann.json"
    ann.write_text('{"database": {"a": {"fps": 30, "duration": 4.0}}}')
    result = CliRunner().invoke(main, ["import-features", str(src), "-o", str(ann), "--fps-from", str(ann)])
    assert result.exit_code == 1 and "-o is one of the inputs (--fps-from)" in result.output
    assert (src / "a.npy").read_bytes() == before and ann.read_text().startswith('{"database"')
    help_text = CliRunner().invoke(main, ["import-features", "--help"]).output
    assert "Exit status: 0" in help_text and "3 some files failed" in help_text
