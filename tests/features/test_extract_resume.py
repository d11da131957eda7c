"""Real `tad extract` processes: SIGKILL mid-run then resume; torchrun on CPU; CLI behaviour."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from extract_video_utils import make_video
from tad.features.extract import ExtractOptions, extract_folder
from tad.features.store import FeatureStore

CLI_FLAGS = ["--backbone", "tiny3d", "--random-init", "--short-side", "32", "--crop", "32", "--store-dtype", "float32",
             "--no-progress"]
OPTS = dict(backbone="tiny3d", random_init=True, short_side=32, crop=32, store_dtype="float32")


def _tad(*args: str) -> list[str]:
    return [sys.executable, "-c", "from tad.cli import main; main()", *args]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _assert_same_store(a: Path, b: Path) -> None:
    first, second = FeatureStore(a), FeatureStore(b)
    assert sorted(first.videos) == sorted(second.videos)
    assert first.attrs["options"]["clip_len"] == second.attrs["options"]["clip_len"]
    for vid in first.videos:
        x, y = first[vid], second[vid]
        np.testing.assert_array_equal(x.timestamps, y.timestamps)
        # batches span videos, so a resumed run groups clips differently: equal up to float rounding
        np.testing.assert_allclose(x.features, y.features, rtol=1e-5, atol=1e-6)
        assert x.attrs["num_frames"] == y.attrs["num_frames"]


@pytest.fixture(scope="module")
def many_videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("many")
    for i in range(8):
        make_video(root / f"v{i:02d}.mp4", num_frames=120 + 7 * i)
    return root


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_uninterrupted_run(many_videos, tmp_path):
    reference = tmp_path / "ref.h5"
    extract_folder(many_videos, reference, ExtractOptions(**OPTS, batch_size=2, workers=1), progress=False)

    out = tmp_path / "killed.h5"
    cmd = _tad("extract", str(many_videos), "-o", str(out), *CLI_FLAGS, "--batch-size", "2", "--workers", "1")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parts = Path(str(out) + ".parts")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if parts.is_dir() and any(p.name.endswith(".h5") for p in parts.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "extraction finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    if out.exists():  # the file at the output path always opens
        FeatureStore(out).videos

    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    skipped = int(re.search(r"skipped (\d+)", rerun.stdout).group(1))
    done = int(re.search(r"done (\d+)", rerun.stdout).group(1))
    assert skipped >= 1 and skipped + done == 8  # completed videos were kept, not recomputed
    _assert_same_store(reference, out)


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_equal_single_process(many_videos, tmp_path):
    subset = tmp_path / "subset"
    subset.mkdir()
    for name in ("v00.mp4", "v01.mp4", "v02.mp4", "v05.mp4", "v07.mp4"):
        os.symlink(many_videos / name, subset / name)
    single = tmp_path / "single.h5"
    extract_folder(subset, single, ExtractOptions(**OPTS, workers=1), progress=False)
    dist_out = tmp_path / "dist.h5"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tad.cli.extract", str(subset), "-o", str(dist_out), *CLI_FLAGS, "--workers", "1"]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_same_store(single, dist_out)
    assert not Path(str(dist_out) + ".parts").exists()


def test_cli_help_errors_and_exit_status(tmp_path):
    help_text = subprocess.run(_tad("extract", "--help"), capture_output=True, text=True, timeout=120).stdout
    assert "Examples:" in help_text and "--random-init" in help_text and "trust" in help_text
    root = tmp_path / "bad"
    root.mkdir()
    (root / "junk.mp4").write_text("nope")
    missing_ckpt = subprocess.run(_tad("extract", str(root), "-o", str(tmp_path / "x.h5")), capture_output=True,
                                  text=True, timeout=120)
    assert missing_ckpt.returncode == 1
    assert missing_ckpt.stderr.strip().splitlines() == [
        "Error: --checkpoint: no checkpoint given; pass --checkpoint CKPT, or --random-init to extract with "
        "untrained (seeded) weights"]
    from click.testing import CliRunner

    from tad.cli.extract import extract

    result = CliRunner().invoke(extract, [str(root), "-o", str(tmp_path / "x.h5"), *CLI_FLAGS])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    junk_lines = [line for line in result.stderr.splitlines() if "junk.mp4" in line]
    assert len(junk_lines) == 1 and junk_lines[0].startswith(f"{root / 'junk.mp4'}: cannot decode as video (")
    assert junk_lines[0].count("junk.mp4") == 1
    assert "failed 1" in result.stdout
