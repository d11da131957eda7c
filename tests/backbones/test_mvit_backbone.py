"""MViTv1-B / MViTv2-S in torchvision's layout: key layout, parity with torchvision's own
``mvit.py`` on seeded weights (fixtures/mvit_parity_seeded.json, see fixtures/README.md),
released checkpoint layout, strict-loading errors and `tad extract` end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.mvit import MViT
from tad.features.extract import ExtractOptions, extract_folder
from tad.features.registry import BACKBONES
from tad.features.store import FeatureStore

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "mvit_parity_seeded.json"
VERSIONS = {"mvit_v1_b": "v1_b", "mvit_v2_s": "v2_s"}


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


_STATES: dict[tuple, dict[str, torch.Tensor]] = {}


def _official_state(case: dict) -> dict[str, torch.Tensor]:
    """Seeded torchvision-name weights (``head.*`` included), drawn once per case."""
    key = (case["model"], case["T"], case["size"], case["seed"])
    if key not in _STATES:
        _STATES[key] = {k: torch.from_numpy(v) for k, v in recipe_state_dict(case["keys"], case["seed"]).items()}
    return _STATES[key]


_MODELS: dict[tuple, MViT] = {}


def _model_for(case: dict) -> MViT:
    """One model per version and input size (every test loads all of its weights first)."""
    key = (case["model"], case["T"], case["size"])
    if key not in _MODELS:
        _MODELS[key] = MViT(version=VERSIONS[case["model"]], img_size=case["size"], num_frames=case["T"]).eval()
    return _MODELS[key]


def _parity(case: dict) -> float:
    model = _model_for(case)
    model.load_state_dict({k: v for k, v in _official_state(case).items() if not k.startswith("head.")}, strict=True)
    with torch.no_grad():
        feature = model(recipe_input(case["seed"], case["T"], case["size"]))
    assert feature.shape == (1, 768)
    return float(np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max())


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_full_size_keys_and_shapes_equal_torchvision(fx, name):
    official = {k: tuple(v) for k, v in fx["keys"][name].items() if not k.startswith("head.")}
    model = BACKBONES.build(dict(type=name))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == official
    assert (model.spec.clip_len, model.spec.frame_interval, model.spec.short_side, model.spec.crop) == (16, 4, 256, 224)
    assert model.spec.mean == (0.45,) * 3 and model.spec.std == (0.225,) * 3 and model.card.feature_dim == 768


@pytest.mark.parametrize("case", ["mvit_v1_b_t4_s64", "mvit_v2_s_t4_s64"])
def test_parity_reduced_input(fx, case):
    """The released 16-block models on a 4-frame 64x64 clip (torchvision builds them for any input size)."""
    assert _parity(fx["cases"][case]) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("case", ["mvit_v1_b_t16_s224", "mvit_v2_s_t16_s224"])
def test_parity_full_size(fx, case):
    assert _parity(fx["cases"][case]) <= 1e-4


def test_torchvision_release_layout_and_errors(tmp_path, fx):
    case = fx["cases"]["mvit_v2_s_t4_s64"]
    state = _official_state(case)
    torch.save(state, tmp_path / "mvit_v2_s-ae3be167.pth")  # torchvision releases are bare state dicts
    model = load_backbone_checkpoint(_model_for(case), tmp_path / "mvit_v2_s-ae3be167.pth")
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items() if not k.startswith("head."))
    # v2 weights into v1: one line naming what does not fit
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(MViT(version="v1_b", img_size=64, num_frames=4), tmp_path / "mvit_v2_s-ae3be167.pth")
    message = str(info.value)
    assert "does not fit backbone mvit_v1_b" in message and "missing keys: pos_encoding.spatial_pos" in message
    assert "93 unexpected keys: blocks.0.attn.pool_q.norm_act.0.bias" in message and "blocks.0.attn.rel_pos_h" in message
    assert "15 shape mismatches: blocks.0.mlp.3.weight (96, 384) vs model (192, 384)" in message and "\n" not in message
    # a checkpoint for another input size: shape mismatches of the position tables
    with pytest.raises(TadInputError, match=r"shape mismatches: blocks\.0\.attn\.rel_pos_h \(31, 96\) vs model \(111, 96\)"):
        load_backbone_checkpoint(MViT(version="v2_s"), tmp_path / "mvit_v2_s-ae3be167.pth")


def test_wrong_clip_size_and_options(fx):
    model = _model_for(fx["cases"]["mvit_v2_s_t4_s64"])
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 4, 64, 64)).shape == (1, 768)
        assert model(torch.zeros(1, 3, 4, 64, 64), spatial_grid=1).shape == (1, 768, 1, 1)
        with pytest.raises(TadInputError, match="4 frames at 64x64"):
            model(torch.zeros(1, 3, 4, 96, 96))
    for bad in (dict(version="v3"), dict(img_size=100), dict(num_frames=3)):
        with pytest.raises(TadInputError):
            MViT(**bad)


@pytest.mark.slow
def test_extract_right_T_C_and_timestamps(tmp_path, real_videos_dir):
    stride = 48
    opts = ExtractOptions(backbone="mvit_v2_s", random_init=True, clip_stride=stride, workers=1, batch_size=4,
                          short_side=64, crop=64, backbone_kwargs=dict(img_size=64, num_frames=4))
    summary = extract_folder(real_videos_dir, tmp_path / "f.h5", opts, progress=False)
    assert not summary.failed and sorted(summary.done) == ["highjump", "tennis26"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == 768 and store.attrs["backbone"] == "mvit_v2_s"
    span = (4 - 1) * 4 + 1
    for vid in store.videos:
        item = store[vid]
        frames = int(round(item.attrs["duration"] * 30.0))
        assert abs(item.features.shape[0] - ((frames - span) // stride + 1)) <= 1
        assert np.isfinite(item.features.astype(np.float32)).all() and np.abs(item.features).max() > 0
        np.testing.assert_allclose(np.diff(item.timestamps), stride / 30.0, atol=2e-3)
        np.testing.assert_allclose(item.timestamps[0], span / 30.0 / 2, atol=2e-3)
