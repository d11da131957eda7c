"""Hara et al. 3D ResNet-50/101, ResNeXt-101: both release layouts, parity with the official code."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.registry import BACKBONES

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "resnet3d_parity.json"
CASES = {  # fixture entry -> (backbone, release, file name as released)
    "resnet3d50_2020": ("resnet3d50", "2020", "r3d50_K_200ep.pth"),
    "resnet3d101_2020": ("resnet3d101", "2020", "r3d101_K_200ep.pth"),
    "resnet3d50_2018": ("resnet3d50", "2018", "resnet-50-kinetics.pth"),
    "resnext3d101_2018": ("resnext3d101", "2018", "resnext-101-kinetics.pth"),
}


@pytest.fixture(scope="module")
def r3d_fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def _save(tmp_path: Path, entry: dict, name: str, arch: str) -> Path:
    state = recipe_state_dict(entry["keys"], entry["seed0"]["seed"])
    path = tmp_path / name  # as main.py saves: {"epoch", "arch", "state_dict", "optimizer"}
    torch.save({"epoch": 200, "arch": arch, "state_dict": {k: torch.from_numpy(v) for k, v in state.items()},
                "optimizer": {}}, path)
    return path


def _parity(tmp_path, r3d_fixture, case):
    backbone, release, name = CASES[case]
    entry = r3d_fixture[case]
    model = BACKBONES.build(dict(type=backbone, release=release)).eval()
    load_backbone_checkpoint(model, _save(tmp_path, entry, name, backbone))
    with torch.no_grad():
        feature = model(recipe_input(0, 16, 112))
    assert feature.shape == (1, 2048)
    err = np.abs(feature[0].double().numpy() - np.asarray(entry["seed0"]["feature"])).max()
    assert err <= 1e-4, f"{case}: max abs error {err:.2e}"


def test_parity_resnet50_2020(tmp_path, r3d_fixture):
    _parity(tmp_path, r3d_fixture, "resnet3d50_2020")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["resnet3d101_2020", "resnet3d50_2018", "resnext3d101_2018"])
def test_parity_deep_and_2018(tmp_path, r3d_fixture, case):
    _parity(tmp_path, r3d_fixture, case)


def test_release_layouts_and_keys(r3d_fixture):
    assert all(k.startswith("module.") for k in r3d_fixture["resnext3d101_2018"]["keys"])
    assert not any(k.startswith("module.") for k in r3d_fixture["resnet3d50_2020"]["keys"])
    shapes = {}  # build each backbone once (ResNet-101 init is not free)
    for case, (backbone, _, _) in CASES.items():
        if backbone not in shapes:
            shapes[backbone] = {k: tuple(v.shape) for k, v in BACKBONES.build(dict(type=backbone)).state_dict().items()}
        ours = shapes[backbone]
        official = {k.removeprefix("module."): tuple(v) for k, v in r3d_fixture[case]["keys"].items()}
        assert ours == {k: v for k, v in official.items() if not k.startswith("fc.")}, case


def test_release_sets_the_normalisation():
    new = BACKBONES.build(dict(type="resnet3d50")).spec
    old = BACKBONES.build(dict(type="resnet3d50", release="2018")).spec
    assert new.mean == (0.4345, 0.4051, 0.3775) and new.std == (0.2768, 0.2713, 0.2737)
    np.testing.assert_allclose(np.array(old.mean) * 255, (114.7748, 107.7354, 99.4750))
    np.testing.assert_allclose(np.array(old.std) * 255, 1.0)
    assert (new.clip_len, new.frame_interval, new.crop, new.short_side) == (16, 1, 112, 112)
    assert BACKBONES.build(dict(type="resnext3d101")).spec.extra["release"] == "2018"
    with pytest.raises(ValueError, match="release must be one of"):
        BACKBONES.build(dict(type="resnet3d50", release="2019"))


def test_other_depth_is_refused(tmp_path, r3d_fixture):
    path = _save(tmp_path, r3d_fixture["resnet3d50_2020"], "r3d50_K_200ep.pth", "resnet-50")
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(BACKBONES.build(dict(type="resnet3d101")), path)
    assert "missing keys: layer3.6." in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(BACKBONES.build(dict(type="resnext3d101")), path)
    assert "shape mismatches" in str(info.value)
