"""mmengine 0.10.x on this stack: no pkg_resources, resume under torch >= 2.6, CPU-only
distributed init. Each is exercised through tad's own entry points."""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "engine"))
from tiny_engine_data import make_tiny_dataset  # noqa: E402

import tad.registry  # noqa: E402,F401  (applies the fixes)


def test_package_utils_work_without_pkg_resources():
    assert importlib.util.find_spec("pkg_resources") is None  # setuptools >= 82 dropped it
    import mmengine.config.config as config_module
    from mmengine.utils import get_installed_path, is_installed

    assert is_installed("mmengine") and is_installed("torch")
    assert not is_installed("surely_not_a_package_xyz")
    assert Path(get_installed_path("mmengine")) == Path(importlib.util.find_spec("mmengine").origin).parent
    assert config_module.is_installed("tad")


def _tad(*args: str, **kwargs) -> subprocess.Popen:
    tad = shutil.which("tad")
    assert tad, "the `tad` command is not on PATH (pip install -e .)"
    return subprocess.Popen([tad, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"tad train ended before {path.name} appeared:\n{proc.stdout.read()}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"{path.name} did not appear within {timeout} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_sigkill_then_resume_continues_from_last_checkpoint(tmp_path):
    ann, store = make_tiny_dataset(tmp_path / "data", num_videos=6)
    work_dir = tmp_path / "run"
    options = ["--cfg-options", f"ann_file={ann}", f"feature_store={store}", "train_cfg.max_epochs=3",
               "train_cfg.val_interval=3"]
    first = _tad("train", "tiny_test.py", "--work-dir", str(work_dir), "--device", "cpu", *options)
    _wait_for(work_dir / "last_checkpoint", first)  # written once epoch_1.pth is complete
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    epoch1 = work_dir / "epoch_1.pth"
    assert epoch1.is_file() and not (work_dir / "epoch_3.pth").exists()
    mtime = epoch1.stat().st_mtime_ns

    second = _tad("train", "tiny_test.py", "--work-dir", str(work_dir), "--resume", "--device", "cpu", *options)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    assert "resumed epoch: 1" in output or "resumed epoch: 2" in output
    assert "Epoch(train) [1]" not in output  # the epoch counter continues
    assert "Epoch(train) [3]" in output
    assert (work_dir / "epoch_3.pth").is_file() and epoch1.stat().st_mtime_ns == mtime
    assert f"work dir: {work_dir}" in output
    assert "best checkpoint: " in output and "best_average_mAP_epoch_3.pth" in output


DIST_INIT_SCRIPT = textwrap.dedent("""
    import torch, torch.distributed as dist

    def forbidden(*args, **kwargs):
        raise RuntimeError("torch.cuda.set_device must not be called on a CPU run")
    torch.cuda.set_device = forbidden

    import tad.registry  # applies the CPU-safe init_dist
    from mmengine.dist import init_dist, get_rank, get_world_size
    init_dist("pytorch", backend="nccl")
    value = torch.tensor([float(get_rank() + 1)])
    dist.all_reduce(value)
    print(f"rank {get_rank()}/{get_world_size()} backend {dist.get_backend()} sum {value.item()}")
    dist.destroy_process_group()
""")


def _free_port() -> int:
    """A port no one listens on now (not a fixed one: parallel test runs must not collide)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_env() -> dict:
    return dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")


@pytest.mark.slow
def test_cpu_distributed_init_uses_gloo_without_cuda(tmp_path):
    script = tmp_path / "dist_init.py"
    script.write_text(DIST_INIT_SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(_free_port()), str(script)], capture_output=True, text=True,
                          timeout=300, env=_cpu_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rank 0/2 backend gloo sum 3.0" in proc.stdout
    assert "rank 1/2 backend gloo sum 3.0" in proc.stdout


TRAIN_SCRIPT = textwrap.dedent("""
    import sys, torch

    def forbidden(*args, **kwargs):
        raise RuntimeError("torch.cuda.set_device must not be called on a CPU run")
    torch.cuda.set_device = forbidden

    from tad.cli import main
    main(sys.argv[1:])
""")


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_tiny_config(tmp_path):
    ann, store = make_tiny_dataset(tmp_path / "data", num_videos=6)
    script = tmp_path / "train_entry.py"
    script.write_text(TRAIN_SCRIPT)
    work_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(_free_port()), str(script), "train", "tiny_test.py", "--work-dir",
                           str(work_dir), "--device", "cpu", "--cfg-options", f"ann_file={ann}",
                           f"feature_store={store}", "train_cfg.max_epochs=1"],
                          capture_output=True, text=True, timeout=600, env=_cpu_env())
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Distributed launcher: pytorch" in output and "Distributed training: True" in output
    assert "GPU number: 2" in output  # mmengine's name for the world size
    assert (work_dir / "epoch_1.pth").is_file()
    assert output.count("work dir: ") == 1  # only rank 0 reports
