"""GSF-BNInception and GSF-InceptionV3: the released key layout, parity with the official code, strict loading, spec."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones import checkpoint
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.gsf import GSF
from tad.features.registry import BACKBONES

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "gsf_inception_parity.json"
NAMES = ("gsf_bninception", "gsf_inceptionv3")
GSF_COUNT = {"gsf_bninception": 10, "gsf_inceptionv3": 11}  # the official "No. of GSF modules"
DIM = {"gsf_bninception": 1024, "gsf_inceptionv3": 2048}


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {name: BACKBONES.build(dict(type=name)).eval() for name in NAMES}


@pytest.fixture(scope="module")
def states(fixture) -> dict[str, dict[str, np.ndarray]]:
    """Seed-0 recipe weights under the official (DataParallel) key names."""
    return {name: recipe_state_dict(fixture[name]["keys"], 0) for name in NAMES}


def _save(path: Path, state: dict) -> Path:
    torch.save({"epoch": 60, "model_state_dict": {k: torch.from_numpy(v) for k, v in state.items()},
                "best_prec1": 0.0}, path)
    return path


@pytest.mark.parametrize("name", NAMES)
def test_release_keys_map_onto_ours(fixture, models, name):
    released = fixture[name]["keys"]  # as saved from DataParallel(VideoModel)
    assert any(k.startswith("module.new_fc.") for k in released)
    ours = {k: tuple(v.shape) for k, v in models[name].state_dict().items()}
    stripped = {k[len("module.base_model."):]: tuple(v) for k, v in released.items()
                if k.startswith("module.base_model.")}
    assert ours == stripped
    assert sum(isinstance(m, GSF) for m in models[name].modules()) == GSF_COUNT[name]


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_official(monkeypatch, fixture, states, models, name):
    """Released layout through the strict loader, then the official feature: 16 frames (the released
    segment count) at 64^2 (BN-Inception) / 75^2 (the smallest the Inception-v3 grid reductions
    take). The official model's input is the
    recipe clip as BGR; ours takes RGB and flips, so it gets the clip with its channels reversed."""
    spec = fixture[name]["seed0_T16"]
    wrapped = {"epoch": 60, "model_state_dict": {k: torch.from_numpy(v) for k, v in states[name].items()}}
    monkeypatch.setattr(checkpoint, "read_checkpoint", lambda path: wrapped)
    model = load_backbone_checkpoint(models[name], f"{name}.pth.tar")
    with torch.no_grad():
        feature = model(recipe_input(spec["seed"], spec["T"], spec["size"]).flip(1))
    assert feature.shape == (1, DIM[name])
    err = np.abs(feature[0].double().numpy() - np.asarray(spec["feature"])).max()
    assert err <= 1e-4, f"max abs error {err:.2e}"


def test_wrong_checkpoints_are_refused(tmp_path, states, models):
    model = models["gsf_inceptionv3"]
    path = _save(tmp_path / "gsf_incv3.pth.tar", states["gsf_inceptionv3"])
    loaded = load_backbone_checkpoint(model, path)  # the released file layout loads
    assert torch.equal(loaded.gsf_mixed_8_tower_conv_Conv2D.conv3D.weight, torch.from_numpy(
        states["gsf_inceptionv3"]["module.base_model.gsf_mixed_8_tower_conv_Conv2D.conv3D.weight"]))
    r50 = BACKBONES.build(dict(type="gsf_r50"))
    other = tmp_path / "r50.pth"
    torch.save({"model_state_dict": {f"module.base_model.{k}": v for k, v in r50.state_dict().items()}}, other)
    with pytest.raises(TadInputError) as info:  # another backbone's checkpoint
        load_backbone_checkpoint(model, other)
    message = str(info.value)
    assert "does not fit backbone gsf_inceptionv3; 674 missing keys: conv_Conv2D.weight" in message
    assert "494 unexpected keys: conv1.weight" in message and "no key matches" in message
    assert "\n" not in message and str(other) in message
    mismatch = r"55 shape mismatches: gsf_mixed_conv_Conv2D.conv3D.weight \(2, 32, 3, 3, 3\) vs model \(2, 16, 3, 3, 3\)"
    with pytest.raises(TadInputError, match=mismatch):
        load_backbone_checkpoint(BACKBONES.build(dict(type="gsf_inceptionv3", gsf_ch_ratio=50)), path)
    truncated = tmp_path / "cut.pth.tar"
    truncated.write_bytes(path.read_bytes()[:4096])
    with pytest.raises(TadInputError, match="cannot read checkpoint"):
        load_backbone_checkpoint(model, truncated)
    with pytest.raises(TadInputError, match="gsf_ch_ratio"):
        BACKBONES.build(dict(type="gsf_inceptionv3", gsf_ch_ratio=-1))
    with pytest.raises(TadInputError, match="gate_impl"):
        BACKBONES.build(dict(type="gsf_inceptionv3", gate_impl="fft"))
    bn_path = _save(tmp_path / "gsf_bninc.pth.tar", states["gsf_bninception"])
    loaded = load_backbone_checkpoint(models["gsf_bninception"], bn_path)
    assert torch.equal(loaded.gsf_inception_4e_3x3_reduce.bn.weight, torch.from_numpy(
        states["gsf_bninception"]["module.base_model.gsf_inception_4e_3x3_reduce.bn.weight"]))
    with pytest.raises(TadInputError, match="missing keys: conv_Conv2D.weight"):  # BN-Inception file, v3 model
        load_backbone_checkpoint(model, bn_path)


@pytest.mark.parametrize("name, short_side, crop", [("gsf_bninception", 256, 224), ("gsf_inceptionv3", 261, 229)])
def test_spec_is_the_official_test_view(models, name, short_side, crop):
    spec = models[name].spec
    assert (spec.clip_len, spec.frame_interval, spec.short_side, spec.crop, spec.feature_dim) == \
        (16, 4, short_side, crop, DIM[name])
    rgb = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1, 1)  # an RGB pixel in [0, 1]
    normalised = (rgb - torch.tensor(spec.mean).view(1, 3, 1, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1, 1)
    bgr_official = rgb.flip(1) * 255 - torch.tensor([104.0, 117.0, 128.0]).view(1, 3, 1, 1, 1)
    torch.testing.assert_close(normalised.flip(1), bgr_official)  # the model's flip gives the official input
    assert spec.extra["channel_order"] == "BGR"


def test_frame_sizes_the_caffe_pooling_cannot_take_are_one_error(models):
    """Caffe ceil-mode pools and unpadded stride-2 convs must agree at each grid reduction; 224^2
    (the R50 crop) does not fit Inception-v3's ``mixed_3`` (12 vs 13), 229^2 (its official crop) does."""
    model = models["gsf_inceptionv3"]
    assert model.check_size(229, 229) is None and model.check_size(75, 75) is None
    assert model.check_size(224, 224) == "224x224 frames do not fit block mixed_3 (branch sizes [12, 13])"
    with pytest.raises(TadInputError, match=r"^--crop: 96x96 frames do not fit block mixed_3"):
        with torch.no_grad():
            model(torch.zeros(1, 3, 2, 96, 96))
    with pytest.raises(TadInputError, match=r"^crop: 48x48 frames do not fit block inception_4e"):
        BACKBONES.build(dict(type="gsf_bninception", crop=48))
    assert models["gsf_bninception"].check_size(224, 224) is None
