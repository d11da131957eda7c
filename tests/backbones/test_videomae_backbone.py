"""VideoMAE / VideoMAEv2 ViTs: official key layout, parity with the official code on seeded
weights (fixtures/videomae_parity_seeded.json, see fixtures/README.md), released checkpoint
layouts, recipes, bf16 and `tad extract` end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.tada2d import TAda2DR50
from tad.features.backbones.videomae import VIT_SIZES, VideoMAEViT
from tad.features.extract import ExtractOptions, extract_folder
from tad.features.registry import BACKBONES
from tad.features.store import FeatureStore

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "videomae_parity_seeded.json"


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


def _model_for(case: dict) -> VideoMAEViT:
    args = case["model_args"]
    size = "g" if args["patch_size"] == 14 else "b"
    return VideoMAEViT(size=size, img_size=case["size"], num_frames=case["T"], depth=args["depth"],
                       width=args["embed_dim"], heads=args["num_heads"]).eval()


def _official_state(case: dict) -> dict[str, torch.Tensor]:
    """Seeded official-name weights including the classifier ``head.*`` (as in a release)."""
    return {k: torch.from_numpy(v) for k, v in recipe_state_dict(case["keys"], case["seed"]).items()}


def _parity(case: dict, impl: str) -> float:
    model = _model_for(case)
    model.load_state_dict({k: v for k, v in _official_state(case).items() if not k.startswith("head.")}, strict=True)
    model.set_attn_impl(impl)
    with torch.no_grad():
        feature = model(recipe_input(case["seed"], case["T"], case["size"]))
    assert feature.shape == (1, case["model_args"]["embed_dim"])
    return float(np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max())


@pytest.mark.parametrize("size", sorted(VIT_SIZES))
def test_full_size_keys_and_shapes_equal_official(fx, size):
    official = {k: tuple(v) for k, v in fx["keys"][f"vit_{size}"].items() if not k.startswith("head.")}
    with torch.device("meta"):  # shapes only: ViT-g has 1B parameters
        model = BACKBONES.get(f"videomae_vit_{size}")()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == official
    assert model.spec.feature_dim == model.card.feature_dim == VIT_SIZES[size].width


@pytest.mark.parametrize("impl", ["sdpa", "math"])
def test_parity_reduced_model(fx, impl):
    assert _parity(fx["cases"]["tiny_d2_s64_t4"], impl) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("case", ["vit_b_d2", "vit_g_d1"])
def test_parity_full_width_reduced_depth(fx, case):
    """ViT-B (patch 16) and ViT-g (patch 14, width 1408, MLP 48/11) at full width and input, 2 / 1 blocks."""
    assert _parity(fx["cases"][case], "sdpa") <= 1e-4


def test_recipes_and_spec():
    g = BACKBONES.build(dict(type="videomae_vit_g", depth=1, width=32, heads=2))
    assert (g.spec.clip_len, g.spec.frame_interval, g.spec.clip_stride, g.spec.resize) == (16, 1, 4, 224)
    assert g.spec.mean == (0.0, 0.0, 0.0) and g.spec.std == (1.0, 1.0, 1.0) and g.spec.feature_dim == 32
    b = BACKBONES.build(dict(type="videomae_vit_b", depth=1))
    assert (b.spec.clip_len, b.spec.frame_interval, b.spec.resize, b.spec.short_side, b.spec.crop) == (16, 4, None, 224, 224)
    assert b.spec.mean == (0.485, 0.456, 0.406) and b.spec.std == (0.229, 0.224, 0.225)
    b_tad = BACKBONES.build(dict(type="videomae_vit_b", depth=1, recipe="tad"))
    assert (b_tad.spec.frame_interval, b_tad.spec.resize, b_tad.spec.feature_dim) == (1, 224, 768)
    for bad, match in ((dict(recipe="x"), "recipe"), (dict(size="q"), "size"), (dict(img_size=100), "multiple"),
                       (dict(attn_impl="flash9"), "attn_impl"), (dict(depth=0), "depth")):
        with pytest.raises(TadInputError, match=match):
            BACKBONES.build(dict(type="videomae_vit_s", **bad))


def test_wrong_clip_size_is_one_line_error():
    model = VideoMAEViT(size="s", img_size=32, num_frames=4, depth=1, width=32, heads=2).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 4, 32, 32)).shape == (2, 32)
        with pytest.raises(TadInputError, match="4 frames at 32x32") as info:
            model(torch.zeros(1, 3, 4, 48, 48))
    assert "\n" not in str(info.value)


def test_spatial_grid_matches_pooled_feature_at_grid_1():
    model = VideoMAEViT(size="b", img_size=64, num_frames=4, depth=1, width=32, heads=2, init_seed=3).eval()
    x = torch.randn(2, 3, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pooled, grid1, grid2 = model(x), model(x, spatial_grid=1), model(x, spatial_grid=2)
    torch.testing.assert_close(grid1[:, :, 0, 0], pooled, atol=1e-5, rtol=1e-5)
    assert grid2.shape == (2, 32, 2, 2) and torch.isfinite(grid2).all()


def test_random_init_is_deterministic():
    a = VideoMAEViT(size="s", depth=1, img_size=32, num_frames=4, init_seed=5)
    b = VideoMAEViT(size="s", depth=1, img_size=32, num_frames=4, init_seed=5)
    c = VideoMAEViT(size="s", depth=1, img_size=32, num_frames=4, init_seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["blocks.0.attn.qkv.weight"], sc["blocks.0.attn.qkv.weight"])


def test_bf16_batch1_path_close_to_fp32(fx):
    """The memory path used for ViT-g on CPU (`--dtype bfloat16`, batch 1), on the reduced model."""
    case = fx["cases"]["tiny_d2_s64_t4"]
    model = _model_for(case)
    model.load_state_dict({k: v for k, v in _official_state(case).items() if not k.startswith("head.")})
    x = recipe_input(case["seed"], case["T"], case["size"])
    with torch.inference_mode():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.shape == ref.shape and torch.isfinite(low).all()
    rel = ((low.float() - ref).norm() / ref.norm()).item()
    assert rel < 2e-2, rel


# ---- released checkpoint layouts ------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_case(fx) -> dict:
    return fx["cases"]["tiny_d2_s64_t4"]


def _assert_loaded(model, state):
    got = model.state_dict()
    for key, value in state.items():
        if not key.startswith("head."):
            assert torch.equal(got[key], value), key


def test_videomae_v1_and_v2_checkpoint_layouts(tmp_path, tiny_case):
    state = _official_state(tiny_case)
    layouts = {
        # MCG-NJU/VideoMAE fine-tune checkpoint.pth: the training loop's dict
        "v1_checkpoint.pth": {"model": state, "optimizer": {}, "epoch": 74, "scaler": {}},
        # OpenGVLab/VideoMAEv2 release (vit_g_hybrid_pt_1200e_k710_ft.pth): DeepSpeed-style 'module'
        "vit_g_hybrid_pt_1200e_k710_ft.pth": {"module": state},
        # a DDP-wrapped bare state dict
        "ddp.pth": {"module." + k: v for k, v in state.items()},
    }
    for name, obj in layouts.items():
        torch.save(obj, tmp_path / name)
        model = load_backbone_checkpoint(_model_for(tiny_case), tmp_path / name)
        _assert_loaded(model, state)


def test_pretrain_checkpoint_and_other_models_are_refused(tmp_path, tiny_case):
    state = _official_state(tiny_case)
    pretrain = {"encoder." + k: v for k, v in state.items() if not k.startswith(("head.", "fc_norm."))}
    pretrain.update({"encoder.norm.weight": torch.ones(96), "decoder.norm.weight": torch.ones(48),
                     "mask_token": torch.zeros(1, 1, 48), "encoder_to_decoder.weight": torch.zeros(48, 96)})
    torch.save({"model": pretrain}, tmp_path / "pretrain.pth")
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(_model_for(tiny_case), tmp_path / "pretrain.pth")
    message = str(info.value)
    assert "does not fit backbone videomae_vit_b; 30 missing keys: patch_embed.proj.weight" in message
    assert "32 unexpected keys: " in message and "encoder.blocks.0.attn.proj.bias" in message and "\n" not in message

    torch.save({"model_state": TAda2DR50().state_dict()}, tmp_path / "tada.pyth")
    with pytest.raises(TadInputError, match="another model"):
        load_backbone_checkpoint(_model_for(tiny_case), tmp_path / "tada.pyth")


def test_size_mismatch_and_truncated_file(tmp_path, tiny_case):
    state = _official_state(tiny_case)
    torch.save({"module": state}, tmp_path / "tiny.pth")
    wider = VideoMAEViT(size="b", img_size=64, num_frames=4, depth=2, width=128, heads=4)
    with pytest.raises(TadInputError, match=r"30 shape mismatches: patch_embed\.proj\.weight \(96, 3, 2, 16, 16\) vs model \(128, 3, 2, 16, 16\)"):
        load_backbone_checkpoint(wider, tmp_path / "tiny.pth")
    deeper = VideoMAEViT(size="b", img_size=64, num_frames=4, depth=3, width=96, heads=4)
    with pytest.raises(TadInputError, match=r"missing keys: blocks\.2\."):
        load_backbone_checkpoint(deeper, tmp_path / "tiny.pth")
    cut = tmp_path / "cut.pth"
    cut.write_bytes((tmp_path / "tiny.pth").read_bytes()[:5000])
    with pytest.raises(TadInputError, match="cannot read checkpoint"):
        load_backbone_checkpoint(_model_for(tiny_case), cut)


# ---- tad extract ------------------------------------------------------------------------
@pytest.mark.slow
def test_extract_tad_recipe_bf16_right_T_C_and_timestamps(tmp_path, real_videos_dir):
    """VideoMAEv2 TAD recipe (consecutive frames, square resize, no normalisation) through
    `tad extract` in bfloat16, on a reduced ViT-g (1 block, width 64, 64x64, 4 frames)."""
    stride = 48
    opts = ExtractOptions(backbone="videomae_vit_g", random_init=True, clip_stride=stride, workers=1, batch_size=4,
                          dtype="bfloat16", backbone_kwargs=dict(depth=1, width=64, heads=2, img_size=56,
                                                                 num_frames=4))
    summary = extract_folder(real_videos_dir, tmp_path / "f.h5", opts, progress=False)
    assert not summary.failed and sorted(summary.done) == ["highjump", "tennis26"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == 64 and store.attrs["backbone"] == "videomae_vit_g"
    options = store.options  # the recipe, as recorded: square resize, no mean/std, consecutive frames
    assert (options["resize"], options["short_side"], options["crop"]) == (56, None, None)
    assert options["mean"] == [0.0] * 3 and options["std"] == [1.0] * 3 and options["dtype"] == "bfloat16"
    assert (options["clip_len"], options["frame_interval"]) == (4, 1)
    span = 4  # 4 consecutive frames
    for vid in store.videos:
        item = store[vid]
        frames = int(round(item.attrs["duration"] * 30.0))
        expected_t = (frames - span) // stride + 1
        assert item.features.shape[1] == 64 and abs(item.features.shape[0] - expected_t) <= 1
        assert np.isfinite(item.features.astype(np.float32)).all() and np.abs(item.features).max() > 0
        np.testing.assert_allclose(np.diff(item.timestamps), stride / 30.0, atol=2e-3)
        np.testing.assert_allclose(item.timestamps[0], span / 30.0 / 2, atol=2e-3)
