"""TSM-R50 and the online TSM MobileNetV2: released key layouts, parity with the official code, online shift."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.tsm import temporal_shift
from tad.features.registry import BACKBONES

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "tsm_parity.json"


@pytest.fixture(scope="module")
def tsm_fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def _save(path: Path, state: dict, wrap: str | None) -> Path:
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    torch.save(tensors if wrap is None else {"epoch": 50, "arch": "resnet50", wrap: tensors, "best_prec1": 0.0}, path)
    return path


def test_r50_release_keys_map_onto_ours(tsm_fixture):
    released = tsm_fixture["tsm_r50"]["keys"]  # as saved from DataParallel(TSN)
    assert "module.base_model.layer1.0.conv1.net.weight" in released and "module.new_fc.weight" in released
    model = BACKBONES.build(dict(type="tsm_r50"))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    stripped = {k[len("module.base_model."):]: tuple(v) for k, v in released.items()
                if k.startswith("module.base_model.")}
    assert ours == stripped


def test_r50_parity_with_official(tmp_path, tsm_fixture):
    entry = tsm_fixture["tsm_r50"]
    state = recipe_state_dict(entry["keys"], entry["seed0"]["seed"])
    path = _save(tmp_path / "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth", state, "state_dict")
    model = load_backbone_checkpoint(BACKBONES.build(dict(type="tsm_r50")).eval(), path)
    case = entry["seed0"]
    with torch.no_grad():
        feature = model(recipe_input(case["seed"], case["T"], case["size"]))
    assert feature.shape == (1, 2048)
    err = np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max()
    assert err <= 1e-4, f"max abs error {err:.2e}"


def test_mobilenetv2_online_parity_with_frame_by_frame_demo(tmp_path, tsm_fixture):
    entry = tsm_fixture["tsm_mobilenetv2_online"]
    state = recipe_state_dict(entry["keys"], entry["seed0"]["seed"])
    path = _save(tmp_path / "mobilenetv2_jester_online.pth.tar", state, None)  # a bare state dict
    model = load_backbone_checkpoint(BACKBONES.build(dict(type="tsm_mobilenetv2_online")).eval(), path)
    case = entry["seed0"]
    with torch.no_grad():
        feature = model(recipe_input(case["seed"], case["T"], case["size"]))
    assert feature.shape == (1, 1280)
    err = np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max()
    assert err <= 1e-4, f"max abs error {err:.2e}"


def test_shift_directions():
    x = torch.arange(3 * 16, dtype=torch.float32).view(3, 16, 1, 1)  # T=3 frames, 16 channels (fold 2)
    off = temporal_shift(x, 3).view(3, 16)
    src = x.view(3, 16)
    assert torch.equal(off[0, :2], src[1, :2]) and torch.equal(off[2, :2], torch.zeros(2))  # from the future
    assert torch.equal(off[1, 2:4], src[0, 2:4]) and torch.equal(off[0, 2:4], torch.zeros(2))  # from the past
    assert torch.equal(off[:, 4:], src[:, 4:])
    on = temporal_shift(x, 3, online=True).view(3, 16)
    assert torch.equal(on[1, :2], src[0, :2]) and torch.equal(on[0, :2], torch.zeros(2))
    assert torch.equal(on[:, 2:], src[:, 2:])


def _live(model):
    """Random init zeroes the last BN of each residual branch; make every branch count."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(module.weight)
    return model.eval()


@pytest.mark.parametrize("name, online", [("tsm_r50", True), ("tsm_mobilenetv2_online", None)])
def test_online_models_never_see_the_future(name, online):
    kwargs = {} if online is None else {"online": online}
    model = _live(BACKBONES.build(dict(type=name, **kwargs)))
    x = torch.randn(1, 3, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, :, -1] += 1.0  # change only the last frame
    with torch.no_grad():
        a, b = model.forward_maps(x)[0], model.forward_maps(y)[0]  # (1, C, T, h, w)
    torch.testing.assert_close(a[:, :, :-1], b[:, :, :-1], rtol=0, atol=0)
    assert not torch.equal(a[:, :, -1], b[:, :, -1])
    if online:  # the offline shift does look ahead
        offline = _live(BACKBONES.build(dict(type=name)))
        with torch.no_grad():
            assert not torch.equal(offline.forward_maps(x)[0][:, :, 0], offline.forward_maps(y)[0][:, :, 0])


def test_spec_and_layers():
    model = BACKBONES.build(dict(type="tsm_r50"))
    spec = model.spec
    assert (spec.clip_len, spec.frame_interval, spec.crop, spec.short_side, spec.feature_dim) == (8, 8, 224, 256, 2048)
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)
    assert len(model.temporal_layers()) == 16 and model.card.continual


def test_wrong_checkpoints_are_refused(tmp_path, tsm_fixture):
    mbv2 = recipe_state_dict(tsm_fixture["tsm_mobilenetv2_online"]["keys"], 0)
    path = _save(tmp_path / "mbv2.pth.tar", mbv2, None)
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(BACKBONES.build(dict(type="tsm_r50")), path)
    message = str(info.value)
    assert "265 missing keys: conv1.weight" in message and "unexpected keys: classifier.bias" in message
    assert "another model" in message and "\n" not in message
    r50 = recipe_state_dict(tsm_fixture["tsm_r50"]["keys"], 0)
    r50["module.base_model.layer4.2.conv3.weight"] = np.zeros((2048, 512, 3, 3), np.float32)
    path = _save(tmp_path / "bad.pth", r50, "state_dict")
    with pytest.raises(TadInputError, match=r"layer4.2.conv3.weight \(2048, 512, 3, 3\) vs model \(2048, 512, 1, 1\)"):
        load_backbone_checkpoint(BACKBONES.build(dict(type="tsm_r50")), path)
