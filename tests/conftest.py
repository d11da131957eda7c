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
