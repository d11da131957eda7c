"""MViTv1-B / MViTv2-S in SlowFast's ``.pyth`` layout: the key mapping, parity with SlowFast's own
MViT on seeded weights (fixtures/mvit_slowfast_parity.json, see fixtures/README.md), strict-loading
errors in SlowFast's names, and `tad extract` on highjump.mp4."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.mvit_slowfast import from_slowfast_key, to_slowfast_key
from tad.features.extract import ExtractOptions, extract_videos
from tad.features.registry import BACKBONES
from tad.features.store import FeatureStore

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "mvit_slowfast_parity.json"
NAMES = ("mvit_v1_b_16x4_slowfast", "mvit_v2_s_16x4_slowfast")


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


_FILES: dict[str, Path] = {}
_MODELS: dict[tuple, torch.nn.Module] = {}


@pytest.fixture(scope="module")
def pyth(tmp_path_factory):
    """``pyth(case)``: a file laid out like SlowFast's released checkpoints (``model_state``, head
    included, plus training state), written once per case (the full-width weights are ~140 MB)."""
    folder = tmp_path_factory.mktemp("mvit_slowfast")

    def make(case: dict) -> Path:
        name = f"{case['model']}_t{case['T']}_s{case['size']}"
        if name not in _FILES:
            state = {k: torch.from_numpy(v) for k, v in recipe_state_dict(case["keys"], case["seed"]).items()}
            _FILES[name] = folder / f"{name}.pyth"
            torch.save({"epoch": 200, "model_state": state, "optimizer_state": {"state": {}, "param_groups": []},
                        "cfg": "MVIT:\n  DEPTH: 16\n"}, _FILES[name])
        return _FILES[name]
    return make


def _model(name: str, size: int = 64, frames: int = 4) -> torch.nn.Module:
    """One model per name and input size (every test loads all of its weights first)."""
    key = (name, size, frames)
    if key not in _MODELS:  # no random init: a strict load overwrites every tensor
        _MODELS[key] = _meta(name, img_size=size, num_frames=frames).to_empty(device="cpu").eval()
    return _MODELS[key]


def _meta(name: str, **kwargs) -> torch.nn.Module:
    """Shapes only (key and shape checks fail before any weight is copied)."""
    with torch.device("meta"):
        return BACKBONES.build(dict(type=name, **kwargs))


@pytest.mark.parametrize("name", NAMES)
def test_full_size_slowfast_keys_map_one_to_one(fx, name):
    official = {k: tuple(v) for k, v in fx["keys"][name].items() if not k.startswith("head.")}
    model = _meta(name)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped = {from_slowfast_key(k) or k: shape for k, shape in official.items()}
    assert set(mapped) == set(ours) and len(mapped) == len(official)
    for key, shape in mapped.items():  # SlowFast keeps a leading 1 on the class token / position tables
        assert tuple(s for s in shape if s != 1) == tuple(s for s in ours[key] if s != 1), key
        assert to_slowfast_key(key) in official
    spec = model.spec
    assert (spec.clip_len, spec.frame_interval, spec.short_side, spec.crop, spec.fps) == (16, 4, 256, 224, 30.0)
    assert spec.mean == (0.45,) * 3 and spec.std == (0.225,) * 3 and model.card.feature_dim == 768
    assert model.card.checkpoints[0].endswith(".pyth") and "SlowFast" in model.card.source


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_slowfast_mvit(fx, pyth, name):
    case = fx["cases"][f"{name}_t4_s64"]
    model = load_backbone_checkpoint(_model(name), pyth(case))
    with torch.no_grad():
        feature = model(recipe_input(case["seed"], case["T"], case["size"]))
    assert feature.shape == (1, 768)
    err = float(np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max())
    assert err <= 1e-4, f"{name}: max abs error {err:.2e}"


def test_strict_loading_errors_name_slowfast_keys(tmp_path, fx, pyth):
    v2 = fx["cases"]["mvit_v2_s_16x4_slowfast_t4_s64"]
    path = pyth(v2)
    # another backbone's checkpoint (v2 into v1): one line, keys as SlowFast names them
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(_meta("mvit_v1_b_16x4_slowfast", img_size=64, num_frames=4), path)
    message = str(info.value)
    assert "does not fit backbone mvit_v1_b_16x4_slowfast" in message and "\n" not in message
    assert "missing keys: pos_embed_spatial" in message and "blocks.0.attn.rel_pos_h" in message
    assert "shape mismatches: blocks.0.mlp.fc2.weight (96, 384) vs model (192, 384)" in message
    # a file for another input size: the position tables do not fit
    with pytest.raises(TadInputError, match=r"shape mismatches: blocks\.0\.attn\.rel_pos_h \(31, 96\) vs model "
                                            r"\(63, 96\)"):
        load_backbone_checkpoint(_meta("mvit_v2_s_16x4_slowfast", img_size=128, num_frames=4), path)
    # a key missing and one extra: named the SlowFast way
    raw = torch.load(path, weights_only=True)
    del raw["model_state"]["blocks.3.attn.norm_q.weight"]
    raw["model_state"]["blocks.0.attn.extra"] = torch.zeros(2)
    torch.save(raw, tmp_path / "edited.pyth")
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(_meta("mvit_v2_s_16x4_slowfast", img_size=64, num_frames=4), tmp_path / "edited.pyth")
    message = str(info.value)
    assert "1 missing keys: blocks.3.attn.norm_q.weight" in message
    assert "1 unexpected keys: blocks.0.attn.extra" in message
    # a truncated file
    (tmp_path / "cut.pyth").write_bytes(path.read_bytes()[:4096])
    with pytest.raises(TadInputError, match="cut.pyth.*cannot read checkpoint"):
        load_backbone_checkpoint(_meta("mvit_v2_s_16x4_slowfast", img_size=64, num_frames=4), tmp_path / "cut.pyth")


def test_torchvision_layout_passes_unchanged():
    """The same network in torchvision's names (``mvit_v2_s-ae3be167.pth``) needs no renaming."""
    model = _meta("mvit_v2_s_16x4_slowfast", img_size=64, num_frames=4)
    state = dict(model.state_dict())
    assert model.convert_checkpoint_keys(state) is state and model.checkpoint_key_display is None
    assert from_slowfast_key("blocks.0.attn.qkv.weight") is None and to_slowfast_key("norm.weight") == "norm.weight"


@pytest.mark.slow
def test_extract_highjump_right_T_C_and_times(tmp_path, real_videos_dir):
    stride = 120
    opts = ExtractOptions(backbone="mvit_v2_s_16x4_slowfast", random_init=True, clip_stride=stride, workers=0,
                          batch_size=4, short_side=64, crop=64, backbone_kwargs=dict(img_size=64, num_frames=4))
    summary = extract_videos([real_videos_dir / "highjump.mp4"], real_videos_dir, tmp_path / "f.h5", opts,
                             progress=False)
    assert not summary.failed and summary.done == ["highjump"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == 768 and store.attrs["backbone"] == "mvit_v2_s_16x4_slowfast"
    item = store["highjump"]
    span = (4 - 1) * 4 + 1
    frames = int(round(item.attrs["duration"] * 30.0))
    assert abs(item.features.shape[0] - ((frames - span) // stride + 1)) <= 1
    assert np.isfinite(item.features.astype(np.float32)).all() and np.abs(item.features).max() > 0
    np.testing.assert_allclose(np.diff(item.timestamps), stride / 30.0, atol=2e-3)
    np.testing.assert_allclose(item.timestamps[0], span / 30.0 / 2, atol=2e-3)
