"""X3D-XS/S/M/L: SlowFast and pytorchvideo key layouts, parity with both official codes, temporal layers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.x3d import X3D, PRESETS
from tad.features.registry import BACKBONES

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "x3d_parity.json"
SIZES = ("xs", "s", "m", "l")


@pytest.fixture(scope="module")
def x3d_fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def _own_keys(model) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("size", SIZES)
def test_keys_equal_slowfast_official(x3d_fixture, size):
    official = {k: tuple(v) for k, v in x3d_fixture[f"x3d_{size}"]["slowfast"]["keys"].items()
                if not k.startswith("head.projection.")}
    assert _own_keys(BACKBONES.build(dict(type=f"x3d_{size}"))) == official


@pytest.mark.parametrize("size", SIZES)
def test_pytorchvideo_keys_map_onto_ours(x3d_fixture, size):
    model = BACKBONES.build(dict(type=f"x3d_{size}"))
    keys = x3d_fixture[f"x3d_{size}"]["pytorchvideo"]["keys"]
    mapped = {X3D.pytorchvideo_key(k): tuple(v) for k, v in keys.items() if not k.startswith("blocks.5.proj.")}
    assert None not in mapped and len(mapped) == len(keys) - 2  # one-to-one, only the classifier dropped
    ours = _own_keys(model)
    # pytorchvideo has no BN on the res2 shortcut: everything else matches, shapes included
    assert {k: v for k, v in ours.items() if not k.startswith("s2.pathway0_res0.branch1_bn.")} == mapped


@pytest.mark.parametrize("size", SIZES)
def test_spec_is_official_single_view_test(size):
    model = BACKBONES.build(dict(type=f"x3d_{size}"))
    clip_len, interval, crop, _, _ = PRESETS[size]
    expected = {"xs": (4, 12, 160), "s": (13, 6, 160), "m": (16, 5, 224), "l": (16, 5, 312)}[size]
    assert (clip_len, interval, crop) == expected
    spec = model.spec
    assert (spec.clip_len, spec.frame_interval, spec.crop, spec.short_side, spec.fps) == (*expected, crop, 30.0)
    assert spec.mean == (0.45,) * 3 and spec.std == (0.225,) * 3 and spec.feature_dim == 2048
    assert model.card.feature_dim == 2048 and model.card.gflops and "CoX3D" in model.card.continual[0]


def _run(model, case) -> np.ndarray:
    shapes = []
    model.s5.register_forward_hook(lambda mod, inp, out: shapes.append(list(out.shape)))
    with torch.no_grad():
        feature = model.eval()(recipe_input(case["seed"], case["T"], case["size"]))
    assert shapes == [case["s5_shape"]]
    return feature[0].double().numpy()


def _parity(tmp_path, fixture, size, layout):
    entry = fixture[f"x3d_{size}"][layout]
    state = recipe_state_dict(entry["keys"], entry["seed0"]["seed"])
    path = tmp_path / f"X3D_{size.upper()}.pyth"  # both releases: {"model_state": ...}
    torch.save({"model_state": {k: torch.from_numpy(v) for k, v in state.items()}, "epoch": 300}, path)
    model = load_backbone_checkpoint(BACKBONES.build(dict(type=f"x3d_{size}")), path)
    err = np.abs(_run(model, entry["seed0"]) - np.asarray(entry["seed0"]["feature"])).max()
    assert err <= 1e-4, f"{layout} x3d_{size}: max abs error {err:.2e}"
    s5 = BACKBONES.build(dict(type=f"x3d_{size}", feature="s5"))
    s5.load_state_dict(model.state_dict())
    err = np.abs(_run(s5, entry["seed0"]) - np.asarray(entry["seed0"]["s5_mean"])).max()
    assert err <= 1e-4, f"{layout} x3d_{size} s5: max abs error {err:.2e}"


@pytest.mark.parametrize("layout", ["slowfast", "pytorchvideo"])
def test_parity_xs(tmp_path, x3d_fixture, layout):
    _parity(tmp_path, x3d_fixture, "xs", layout)


@pytest.mark.slow
@pytest.mark.parametrize("size", ["s", "m", "l"])
@pytest.mark.parametrize("layout", ["slowfast", "pytorchvideo"])
def test_parity_full_size(tmp_path, x3d_fixture, size, layout):
    _parity(tmp_path, x3d_fixture, size, layout)


def test_temporal_layers_list_every_frame_mixing_op():
    model = BACKBONES.build(dict(type="x3d_m"))
    layers = model.temporal_layers()
    assert model.depths == (3, 5, 11, 7)
    convs = [layer for layer in layers if layer.kind == "conv"]
    pools = [layer for layer in layers if layer.kind == "global_pool"]
    assert len(convs) == 1 + sum(model.depths)
    assert len(pools) == sum((d + 1) // 2 for d in model.depths) + 1  # SE on blocks 0, 2, ... + head
    stem = convs[0]
    assert (stem.name, stem.kernel, stem.stride, stem.padding, stem.groups) == ("s1.pathway0_stem.conv", 5, 1, 2, 24)
    assert all((c.kernel, c.stride, c.padding) == (3, 1, 1) and c.groups == c.channels for c in convs[1:])
    assert layers[-1].name == "head.avg_pool"
    for layer in convs:  # the names are real modules with those kernels
        conv = model.get_submodule(layer.name)
        assert (conv.kernel_size[0], conv.padding[0], conv.groups) == (layer.kernel, layer.padding, layer.groups)
    assert BACKBONES.build(dict(type="x3d_l")).depths == (5, 10, 25, 15)


def test_feature_options_and_spatial_grid():
    x = torch.randn(1, 3, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    model = BACKBONES.build(dict(type="x3d_xs")).eval()
    with torch.no_grad():
        vec, grid = model(x), model(x, spatial_grid=2)
    assert vec.shape == (1, 2048) and grid.shape == (1, 2048, 2, 2) and torch.isfinite(grid).all()
    conv5 = BACKBONES.build(dict(type="x3d_xs", feature="conv5")).eval()
    assert conv5.spec.feature_dim == 432 and conv5(x).shape == (1, 432)
    with pytest.raises(ValueError, match="feature must be one of"):
        BACKBONES.build(dict(type="x3d_xs", feature="fc"))


def test_other_checkpoints_are_refused(tmp_path, x3d_fixture):
    entry = x3d_fixture["x3d_s"]["slowfast"]
    state = recipe_state_dict(entry["keys"], 0)
    path = tmp_path / "x3d_s.pyth"
    torch.save({"model_state": {k: torch.from_numpy(v) for k, v in state.items()}}, path)
    with pytest.raises(TadInputError) as info:  # X3D-S weights into X3D-L: the deeper blocks are missing
        load_backbone_checkpoint(BACKBONES.build(dict(type="x3d_l")), path)
    message = str(info.value)
    assert "missing keys: s2.pathway0_res3." in message and "\n" not in message
    pvd = x3d_fixture["x3d_s"]["pytorchvideo"]["keys"]
    bad = {k: torch.from_numpy(v) for k, v in recipe_state_dict(pvd, 0).items()}
    bad["blocks.0.conv.conv_t.weight"] = torch.zeros(24, 3, 1, 5, 5)
    del bad["blocks.4.res_blocks.6.branch2.conv_c.weight"]
    bad["blocks.9.extra.weight"] = torch.zeros(3)
    torch.save({"model_state": bad}, path)
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(BACKBONES.build(dict(type="x3d_s")), path)
    message = str(info.value)
    assert "1 missing keys: s5.pathway0_res6.branch2.c.weight" in message
    assert "1 unexpected keys: <pytorchvideo>blocks.9.extra.weight" in message
    assert "s1.pathway0_stem.conv_xy.weight (24, 3, 1, 5, 5) vs model (24, 3, 1, 3, 3)" in message
