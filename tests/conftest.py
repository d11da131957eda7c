"""Shared test fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout: real THUMOS14 annotations, two real videos, backbone fixtures."""
    if not SHARED.is_dir():
        raise FileNotFoundError(f"{SHARED}: the shared data folder beside the checkout is missing")
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
