"""Helpers shared by the store tests (not a test module)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tad.features.store import FeatureStore

LOOP_SCRIPT = Path(__file__).with_name("store_writer_loop.py")
REPO = Path(__file__).resolve().parents[2]


def loop_cmd(out: Path, *args: str) -> list[str]:
    return [sys.executable, str(LOOP_SCRIPT), str(out), *args]


def loop_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(LOOP_SCRIPT.parent) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_loop(out: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(loop_cmd(out, *args), env=loop_env(), capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"writer loop failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_stores_equal(path_a: Path, path_b: Path) -> None:
    """Same root attrs, failed list, videos, and bit-identical features/timestamps/attrs."""
    a, b = FeatureStore(path_a), FeatureStore(path_b)
    assert a.attrs == b.attrs
    assert a.failed == b.failed
    assert a.videos == b.videos
    for vid in a.videos:
        va, vb = a[vid], b[vid]
        assert va.features.dtype == vb.features.dtype
        np.testing.assert_array_equal(va.features, vb.features)
        np.testing.assert_array_equal(va.timestamps, vb.timestamps)
        assert va.attrs == vb.attrs
