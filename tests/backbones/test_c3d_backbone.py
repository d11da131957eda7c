"""C3D Sports-1M: c3d.pickle layout, fc6/fc7 parity with c3d-pytorch, the Caffe mean subtraction."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.c3d import CROP_OFFSET, MEAN_SHAPE, crop_mean_volume, load_mean_volume, subtract_caffe_mean
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.registry import BACKBONES

from parity_recipe import recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "c3d_parity.json"


@pytest.fixture(scope="module")
def c3d_entry() -> dict:
    return json.loads(FIXTURE.read_text())["c3d_sports1m"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, c3d_entry):
    """The official-layout recipe weights written as c3d-pytorch does (torch.save of the bare
    state dict) and loaded through the strict loader: done once, the file is 300 MB."""
    case = c3d_entry["seed0"]
    path = tmp_path_factory.mktemp("c3d") / "c3d.pickle"
    torch.save({k: torch.from_numpy(v) for k, v in recipe_state_dict(c3d_entry["keys"], case["seed"]).items()}, path)
    model = BACKBONES.build(dict(type="c3d_sports1m", bgr_mean=tuple(case["bgr_mean"]))).eval()
    load_backbone_checkpoint(model, path)
    path.unlink()
    return model


def test_parity_fc6_and_fc7_with_c3d_pytorch(loaded, c3d_entry):
    """In float64, as the official outputs were computed: C3D's fc6/fc7 reach ~50, where float32
    rounding alone differs by up to 1.1e-4 between CPUs (AVX2 vs AVX-512 kernels), for the official
    code as for ours; in float64 the two agree to the fixture's 8 significant digits."""
    case = c3d_entry["seed0"]
    rgb = np.random.default_rng(case["seed"] + 1).uniform(0, 255, (1, 3, 16, 112, 112)).astype(np.float32)
    loaded.double()
    try:
        for feature in ("fc6", "fc7"):
            loaded.feature = feature
            with torch.no_grad():
                out = loaded(torch.from_numpy(rgb).double())
            assert out.shape == (1, 4096)
            err = np.abs(out[0].numpy() - np.asarray(case[feature])).max()
            assert err <= 1e-5, f"{feature}: max abs error {err:.2e}"
    finally:
        loaded.float()
        loaded.feature = "fc6"


def test_keys_spec_and_rgb_pipeline(loaded, c3d_entry):
    official = {k: tuple(v) for k, v in c3d_entry["keys"].items() if not k.startswith("fc8.")}
    assert {k: tuple(v.shape) for k, v in loaded.state_dict().items()} == official
    spec = loaded.spec
    assert (spec.clip_len, spec.frame_interval, spec.short_side, spec.crop, spec.feature_dim) == (16, 1, 128, 112, 4096)
    # the pipeline's (x - mean) / std with mean 0, std 1/255 turns [0, 1] frames into 0-255
    assert spec.mean == (0.0, 0.0, 0.0) and all(abs(s * 255 - 1) < 1e-12 for s in spec.std)


def test_mean_volume_is_cropped_like_caffe(tmp_path):
    volume = np.random.default_rng(3).uniform(0, 255, MEAN_SHAPE).astype(np.float32)  # (3, 16, 128, 171) BGR
    np.save(tmp_path / "mean.npy", volume)
    np.save(tmp_path / "mean_keras.npy", volume.transpose(1, 2, 3, 0)[None])  # (1, 16, 128, 171, 3)
    rgb = torch.rand(2, 3, 16, 112, 112) * 255
    assert CROP_OFFSET == (8, 29)
    expected = rgb.flip(1) - torch.from_numpy(volume[:, :, 8:120, 29:141])
    for name in ("mean.npy", "mean_keras.npy"):
        mean = crop_mean_volume(load_mean_volume(tmp_path / name))[None]
        torch.testing.assert_close(subtract_caffe_mean(rgb, mean), expected, rtol=0, atol=0)
    per_channel = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1, 1)
    torch.testing.assert_close(subtract_caffe_mean(rgb, per_channel)[:, 0], rgb[:, 2] - 10.0)
    model = BACKBONES.build(dict(type="c3d_sports1m", mean_file=str(tmp_path / "mean.npy")))  # the option is wired
    torch.testing.assert_close(model.subtract_mean(rgb), expected, rtol=0, atol=0)
    np.save(tmp_path / "wrong.npy", np.zeros((3, 16, 112, 112), np.float32))
    with pytest.raises(TadInputError, match="expected"):
        load_mean_volume(tmp_path / "wrong.npy")


def test_bad_options_and_inputs(tmp_path, loaded, c3d_entry):
    with pytest.raises(TadInputError, match="not both"):
        BACKBONES.build(dict(type="c3d_sports1m", mean_file="x.npy", bgr_mean=(1, 2, 3)))
    mean = loaded.bgr_mean
    loaded.bgr_mean = None
    with pytest.raises(TadInputError, match="needs mean_file=PATH"):
        loaded(torch.zeros(1, 3, 16, 112, 112))
    loaded.bgr_mean = mean
    with pytest.raises(TadInputError, match="112 x 112"):
        loaded(torch.zeros(1, 3, 16, 64, 64))
    with pytest.raises(TadInputError, match="no grid"):
        loaded(torch.zeros(1, 3, 16, 112, 112), spatial_grid=2)
    # a broken file: expanded zeros keep it a few bytes while the shapes read as released
    state = {k: torch.zeros(1).expand(*v) for k, v in c3d_entry["keys"].items()}
    state["fc6.weight"] = torch.zeros(1).expand(4096, 4096)
    del state["conv5b.bias"]
    path = tmp_path / "bad.pickle"
    torch.save(state, path)
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(loaded, path)
    message = str(info.value)
    assert "1 missing keys: conv5b.bias" in message and "fc6.weight (4096, 4096) vs model (4096, 8192)" in message
