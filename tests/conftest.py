"""Shared test fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_shared() -> Path:
    """$TAD_SHARED_DIR, else the nearest ``shared/`` beside the checkout or one of its parents."""
    if os.environ.get("TAD_SHARED_DIR"):
        return Path(os.environ["TAD_SHARED_DIR"])
    for parent in REPO.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared"
    return REPO.parent / "shared"


SHARED = _find_shared()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (or $TAD_SHARED_DIR): real THUMOS14 annotations, two real videos,
    backbone fixtures."""
    if not SHARED.is_dir():
        raise FileNotFoundError(f"{SHARED}: the shared data folder beside the checkout is missing "
                                "(set TAD_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def thumos_json(shared_dir: Path) -> Path:
    return shared_dir / "data" / "thumos14" / "thumos14.json"


@pytest.fixture(scope="session")
def real_videos_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "videos"


@pytest.fixture(scope="session")
def backbone_fixtures_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "backbones"


#: session fixtures that train a model: tests using one run on the same xdist worker under
#: ``--dist loadgroup``, so each run trains once
_TRAINING_FIXTURES = ("trained_run", "causal_run")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets one torch thread (and so do the processes it starts):
    the workers already use the cores, more threads per worker only contend."""
    config.addinivalue_line("markers", "xdist_group(name): run on one pytest-xdist worker under --dist loadgroup")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name in _TRAINING_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
                break
