"""C3D Sports-1M: c3d.pickle layout, fc6/fc7 parity with c3d-pytorch, the Caffe mean subtraction."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.c3d import CROP_OFFSET, MEAN_SHAPE
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.registry import BACKBONES

from conftest import recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "c3d_parity.json"


@pytest.fixture(scope="module")
def c3d_entry() -> dict:
    return json.loads(FIXTURE.read_text())["c3d_sports1m"]


def _pickle(tmp_path: Path, state: dict) -> Path:
    path = tmp_path / "c3d.pickle"  # c3d-pytorch: torch.save of the bare state dict
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
    return path


@pytest.mark.parametrize("feature", ["fc6", "fc7"])
def test_parity_with_c3d_pytorch(tmp_path, c3d_entry, feature):
    case = c3d_entry["seed0"]
    path = _pickle(tmp_path, recipe_state_dict(c3d_entry["keys"], case["seed"]))
    model = BACKBONES.build(dict(type="c3d_sports1m", feature=feature, bgr_mean=tuple(case["bgr_mean"]))).eval()
    load_backbone_checkpoint(model, path)
    rgb = np.random.default_rng(case["seed"] + 1).uniform(0, 255, (1, 3, 16, 112, 112)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(rgb))
    assert out.shape == (1, 4096)
    err = np.abs(out[0].double().numpy() - np.asarray(case[feature])).max()
    assert err <= 1e-4, f"{feature}: max abs error {err:.2e}"


def test_keys_spec_and_rgb_pipeline(c3d_entry):
    model = BACKBONES.build(dict(type="c3d_sports1m", bgr_mean=(1, 2, 3)))
    official = {k: tuple(v) for k, v in c3d_entry["keys"].items() if not k.startswith("fc8.")}
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == official
    spec = model.spec
    assert (spec.clip_len, spec.frame_interval, spec.short_side, spec.crop, spec.feature_dim) == (16, 1, 128, 112, 4096)
    # the pipeline's (x - mean) / std with mean 0, std 1/255 turns [0, 1] frames into 0-255
    assert spec.mean == (0.0, 0.0, 0.0) and all(abs(s * 255 - 1) < 1e-12 for s in spec.std)


def test_mean_volume_is_cropped_like_caffe(tmp_path):
    volume = np.random.default_rng(3).uniform(0, 255, MEAN_SHAPE).astype(np.float32)  # (3, 16, 128, 171) BGR
    np.save(tmp_path / "mean.npy", volume)
    np.save(tmp_path / "mean_keras.npy", volume.transpose(1, 2, 3, 0)[None])  # (1, 16, 128, 171, 3)
    rgb = torch.rand(2, 3, 16, 112, 112) * 255
    top, left = CROP_OFFSET
    assert (top, left) == (8, 29)
    expected = rgb.flip(1) - torch.from_numpy(volume[:, :, 8:120, 29:141])
    for name in ("mean.npy", "mean_keras.npy"):
        model = BACKBONES.build(dict(type="c3d_sports1m", mean_file=str(tmp_path / name)))
        torch.testing.assert_close(model.subtract_mean(rgb), expected, rtol=0, atol=0)
    per_channel = BACKBONES.build(dict(type="c3d_sports1m", bgr_mean=(10.0, 20.0, 30.0)))
    torch.testing.assert_close(per_channel.subtract_mean(rgb)[:, 0], rgb[:, 2] - 10.0)


def test_bad_options_and_inputs(tmp_path, c3d_entry):
    with pytest.raises(TadInputError, match="needs mean_file=PATH"):
        BACKBONES.build(dict(type="c3d_sports1m"))(torch.zeros(1, 3, 16, 112, 112))
    with pytest.raises(TadInputError, match="not both"):
        BACKBONES.build(dict(type="c3d_sports1m", mean_file="x.npy", bgr_mean=(1, 2, 3)))
    np.save(tmp_path / "wrong.npy", np.zeros((3, 16, 112, 112), np.float32))
    with pytest.raises(TadInputError, match="expected"):
        BACKBONES.build(dict(type="c3d_sports1m", mean_file=str(tmp_path / "wrong.npy")))
    model = BACKBONES.build(dict(type="c3d_sports1m", bgr_mean=(0, 0, 0))).eval()
    with pytest.raises(TadInputError, match="112 x 112"):
        model(torch.zeros(1, 3, 16, 64, 64))
    with pytest.raises(TadInputError, match="no grid"):
        model(torch.zeros(1, 3, 16, 112, 112), spatial_grid=2)
    state = recipe_state_dict(c3d_entry["keys"], 0)
    state["fc6.weight"] = state["fc6.weight"][:, :4096]
    del state["conv5b.bias"]
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(model, _pickle(tmp_path, state))
    message = str(info.value)
    assert "1 missing keys: conv5b.bias" in message and "fc6.weight (4096, 4096) vs model (4096, 8192)" in message
