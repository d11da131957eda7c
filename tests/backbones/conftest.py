"""Backbone test fixtures; the weight recipe itself lives in ``parity_recipe.py``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from parity_recipe import recipe_state_dict


@pytest.fixture(scope="session")
def parity_fixture(backbone_fixtures_dir: Path) -> dict:
    return json.loads((backbone_fixtures_dir / "parity_seeded.json").read_text())


@pytest.fixture(scope="session")
def caffe2_names(backbone_fixtures_dir: Path) -> dict[str, str]:
    return json.loads((backbone_fixtures_dir / "slowfast_caffe2_names.json").read_text())["map"]


@pytest.fixture(scope="session")
def tada_state(parity_fixture) -> dict[str, np.ndarray]:
    """Official-name TAda2D weights (with ``backbone.`` prefix and head) from the seed-0 recipe."""
    case = parity_fixture["tada2d_r50_8x8"]
    return recipe_state_dict(case["keys"], case["seed0_T8"]["seed"])


@pytest.fixture(scope="session")
def slowfast_state(parity_fixture) -> dict[str, np.ndarray]:
    case = parity_fixture["slowfast_r50_8x8"]
    return recipe_state_dict(case["keys"], case["seed0"]["seed"])
