"""Fixtures for the streaming tests: a tiny causal detector trained on the engine tests' data."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent / "engine", HERE.parent / "features"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture(scope="session")
def causal_run(tmp_path_factory):
    """Two epochs of tiny_test_causal.py (3 classes, 16-d tiny3d features at 10 fps); -> checkpoint path."""
    from tiny_engine_data import make_tiny_dataset

    from tad.engine.runner import build_runner, find_best_checkpoint, load_config

    ann, store = make_tiny_dataset(tmp_path_factory.mktemp("causal_data"))
    work_dir = tmp_path_factory.mktemp("causal_run")
    cfg = load_config("tiny_test_causal.py", [f"ann_file={ann}", f"feature_store={store}", "train_cfg.max_epochs=2",
                                              "default_hooks.logger.interval=50"])
    runner = build_runner(cfg, work_dir=work_dir, device="cpu")
    runner.train()
    return find_best_checkpoint(work_dir)
