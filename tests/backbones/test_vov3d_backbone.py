"""VoV3D-M / VoV3D-L: the official key layout, parity with youngwanLEE/VoV3D's own model on seeded
weights (fixtures/vov3d_parity.json, see fixtures/README.md), strict-loading errors and
`tad extract` on highjump.mp4."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.extract import ExtractOptions, extract_videos
from tad.features.registry import BACKBONES
from tad.features.store import FeatureStore

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "vov3d_parity.json"


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


def _pth(tmp_path: Path, keys: dict, name: str) -> Path:
    """A file laid out like the released ones (SlowFast's checkpointer: ``model_state``, head included)."""
    state = {k: torch.from_numpy(v) for k, v in recipe_state_dict(keys, 0).items()}
    path = tmp_path / name
    torch.save({"epoch": 256, "model_state": state, "optimizer_state": {}}, path)
    return path


def _meta(name: str, **kwargs) -> torch.nn.Module:
    """Shapes only: key checks fail before any weight is copied; ``.to_empty`` + a strict load fills it."""
    with torch.device("meta"):
        return BACKBONES.build(dict(type=name, **kwargs))


@pytest.mark.parametrize("size", ["m", "l"])
def test_keys_and_spec_equal_official(fx, size):
    model = _meta(f"vov3d_{size}")
    official = {k: tuple(v) for k, v in fx["keys"][f"vov3d_{size}"].items() if not k.startswith("head.projection.")}
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == official
    spec = model.spec
    assert (spec.clip_len, spec.frame_interval, spec.short_side, spec.crop, spec.fps) == (16, 5, 256, 256, 30.0)
    assert spec.mean == (0.45,) * 3 and spec.std == (0.225,) * 3 and spec.feature_dim == 2048
    assert model.depths == {"m": (1, 2, 3, 2), "l": (1, 2, 5, 3)}[size]
    assert model.card.feature_dim == 2048 and model.card.gflops > 0
    assert f"vov3d_{size.upper()}_k400_weight.pth" in model.card.checkpoints


def _parity(tmp_path, fx, case_name):
    case = fx["cases"][case_name]
    keys = case.get("keys") or fx["keys"][case["model"]]
    model = _meta(case["model"]).to_empty(device="cpu")
    model = load_backbone_checkpoint(model, _pth(tmp_path, keys, "w.pth")).eval()
    shapes = []
    model.s5.register_forward_hook(lambda mod, inp, out: shapes.append(list(out.shape)))
    x = recipe_input(case["seed"], case["T"], case["size"])
    with torch.no_grad():
        feature = model(x)
        s5 = _meta(case["model"], feature="s5").to_empty(device="cpu").eval()
        s5.load_state_dict(model.state_dict())
        s5_mean = s5(x)
    assert shapes[0] == case["s5_shape"] and feature.shape == (1, 2048)
    err = float(np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max())
    assert err <= 1e-4, f"{case_name}: max abs error {err:.2e}"
    err = float(np.abs(s5_mean[0].double().numpy() - np.asarray(case["s5_mean"])).max())
    assert err <= 1e-4, f"{case_name} s5: max abs error {err:.2e}"


@pytest.mark.parametrize("size", ["m", "l"])
def test_parity_reduced_input(tmp_path, fx, size):
    """The released networks on a 4-frame 64x64 clip (the official model builds for any input size)."""
    _parity(tmp_path, fx, f"vov3d_{size}_t4_s64")


def test_strict_loading_errors(tmp_path, fx):
    path = _pth(tmp_path, fx["cases"]["vov3d_m_t4_s64"]["keys"], "vov3d_M_k400_weight.pth")
    with pytest.raises(TadInputError) as info:  # VoV3D-M weights into VoV3D-L: the deeper blocks are missing
        load_backbone_checkpoint(_meta("vov3d_l"), path)
    message = str(info.value)
    assert "does not fit backbone vov3d_l" in message and "\n" not in message
    assert "291 missing keys: s4.pathway0_res3.branch2.layers.0.a.0.weight" in message
    assert "784 shape mismatches: s1.pathway0_stem.conv_xy.weight (20, 3, 1, 3, 3) vs model (24, 3, 1, 3, 3)" in message
    raw = torch.load(path, weights_only=True)
    del raw["model_state"]["s3.pathway0_res1.branch2.layers.2.se.fc1.bias"]
    raw["model_state"]["s3.pathway0_res1.branch2.layers.1.se.fc1.bias"] = torch.zeros(8)
    torch.save(raw, path)
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(_meta("vov3d_m"), path)
    message = str(info.value)
    assert "1 missing keys: s3.pathway0_res1.branch2.layers.2.se.fc1.bias" in message
    assert "1 unexpected keys: s3.pathway0_res1.branch2.layers.1.se.fc1.bias" in message
    x3d = {"s1.pathway0_stem.conv_xy.weight": torch.zeros(24, 3, 1, 3, 3)}
    torch.save({"model_state": x3d}, tmp_path / "x3d_m.pyth")  # another backbone's checkpoint
    with pytest.raises(TadInputError, match="shape mismatches: s1.pathway0_stem.conv_xy.weight"):
        load_backbone_checkpoint(_meta("vov3d_m"), tmp_path / "x3d_m.pyth")
    (tmp_path / "cut.pth").write_bytes(path.read_bytes()[:2048])
    with pytest.raises(TadInputError, match="cut.pth.*cannot read checkpoint"):
        load_backbone_checkpoint(_meta("vov3d_m"), tmp_path / "cut.pth")
    with pytest.raises(TadInputError, match="feature"):
        BACKBONES.build(dict(type="vov3d_m", feature="fc"))


@pytest.mark.slow
def test_extract_highjump_right_T_C_and_times(tmp_path, real_videos_dir):
    stride = 120
    opts = ExtractOptions(backbone="vov3d_m", random_init=True, clip_stride=stride, workers=0, batch_size=4,
                          short_side=64, crop=64, backbone_kwargs=dict(feature="conv5"))
    summary = extract_videos([real_videos_dir / "highjump.mp4"], real_videos_dir, tmp_path / "f.h5", opts,
                             progress=False)
    assert not summary.failed and summary.done == ["highjump"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == 320 and store.attrs["backbone"] == "vov3d_m"
    assert store.attrs["options"]["clip_len"] == 16 and store.attrs["options"]["frame_interval"] == 5
    item = store["highjump"]
    span = (16 - 1) * 5 + 1
    frames = int(round(item.attrs["duration"] * 30.0))
    assert abs(item.features.shape[0] - ((frames - span) // stride + 1)) <= 1
    assert np.isfinite(item.features.astype(np.float32)).all() and np.abs(item.features).max() > 0
    np.testing.assert_allclose(np.diff(item.timestamps), stride / 30.0, atol=2e-3)
    np.testing.assert_allclose(item.timestamps[0], span / 30.0 / 2, atol=2e-3)
