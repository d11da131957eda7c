"""Fixtures for the engine tests: a tiny easy dataset and one short training run."""
from __future__ import annotations

import pytest

from tiny_engine_data import CLASSES, make_tiny_dataset  # noqa: F401


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture
def tiny_options(tiny_dataset):
    """--cfg-options pointing tiny_test.py at the tiny dataset."""
    ann, store = tiny_dataset
    return [f"ann_file={ann}", f"feature_store={store}"]


@pytest.fixture(scope="session")
def trained_run(tiny_dataset, tmp_path_factory):
    """One epoch of tiny_test.py through build_runner; returns (work_dir, best checkpoint)."""
    from tad.engine.runner import build_runner, find_best_checkpoint, load_config

    ann, store = tiny_dataset
    work_dir = tmp_path_factory.mktemp("tiny_run")
    cfg = load_config("tiny_test.py", [f"ann_file={ann}", f"feature_store={store}", "train_cfg.max_epochs=1",
                                       "default_hooks.logger.interval=50"])
    runner = build_runner(cfg, work_dir=work_dir, device="cpu")
    runner.train()
    return work_dir, find_best_checkpoint(work_dir)
