"""MTV (scenic, cross-view attention): the Flax checkpoint converter and the backbone, against
the official scenic model on seeded weights (fixtures/mtv_parity_seeded.json, see
fixtures/README.md). The checkpoints are written in scenic's layout with the ViViT tests' Flax
msgpack writer."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tad.cli import main as tad_main
from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.convert_mtv import convert_mtv_checkpoint
from tad.features.backbones.mtv import MTV
from tad.features.registry import BACKBONES

from parity_recipe import flax_recipe_params, zero_centred_input
from test_vivit_backbone import flax_msgpack_bytes, nest, scenic_train_state

FIXTURE = Path(__file__).parent / "fixtures" / "mtv_parity_seeded.json"


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


def model_for(case: dict) -> MTV:
    """The case's model, uninitialised (the test loads every weight): no random draw of ~50 M values."""
    args = case["model_args"]
    with torch.device("meta"):
        model = MTV(views=args["views"], depth=args["depth"], fusion_layers=tuple(args["fusion_layers"]),
                    global_depth=args["global_depth"], global_mlp_dim=args["global_mlp_dim"], img_size=case["size"],
                    num_frames=case["T"])
    return model.to_empty(device="cpu").eval()


_RECIPES: dict[int, dict[str, np.ndarray]] = {}


def recipe(case: dict) -> dict[str, np.ndarray]:
    """The case's seeded params, drawn once per module (tens of millions of values)."""
    if case["seed"] not in _RECIPES:
        _RECIPES[case["seed"]] = flax_recipe_params(case["keys"], case["seed"])
    return dict(_RECIPES[case["seed"]])


def write_case(case: dict, path: Path, layout: str = "flax.optim", drop: str | None = None) -> dict[str, np.ndarray]:
    flat = recipe(case)
    params = nest({k: v for k, v in flat.items() if drop is None or not k.startswith(drop)})
    path.write_bytes(flax_msgpack_bytes(scenic_train_state(params, layout)))
    return flat


@pytest.mark.parametrize("name,layout", [("mtv_b_tiny", "flax.optim"),
                                         pytest.param("mtv_l_tiny", "optax", marks=pytest.mark.slow)])
def test_converted_checkpoint_matches_official(fx, tmp_path, name, layout):
    """Ti/8+S/4+B/2 (MTV-B's views) and Ti/8+S/4+B/2+L/1 (four views, fusion at every layer) at
    the ViT widths, 2 blocks per view, 8 frames at 32x32."""
    case = fx["cases"][name]
    write_case(case, tmp_path / "checkpoint_3", layout)
    meta = convert_mtv_checkpoint(tmp_path, tmp_path / "mtv.pth")
    model = load_backbone_checkpoint(model_for(case), tmp_path / "mtv.pth")
    for impl in ("sdpa", "math"):
        model.set_attn_impl(impl)
        with torch.no_grad():
            feature = model(zero_centred_input(case["seed"], case["T"], case["size"]))
        assert feature.shape == (1, model.spec.feature_dim)
        assert float(np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max()) <= 1e-4, impl
    assert meta["backbone"] == ("mtv_l_k600" if name == "mtv_l_tiny" else "mtv_b_k400")
    with torch.device("meta"):  # the printed --backbone-options rebuild the converted model
        rebuilt = BACKBONES.build(dict(type=meta["backbone"], **{k: _literal(v) for k, v in meta["options"].items()}))
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def _literal(value):
    import ast

    try:
        return ast.literal_eval(value) if isinstance(value, str) else value
    except (ValueError, SyntaxError):
        return value


def test_bad_checkpoints_are_one_line_errors(fx, tmp_path):
    case = fx["cases"]["mtv_b_tiny"]
    dst = tmp_path / "out.pth"
    write_case(case, tmp_path / "missing", drop="MultiviewEncoder/cross_view_encoderblock_1/cross_attention_view0_1")
    with pytest.raises(TadInputError, match=r"8 missing keys: fusion\.1\.attn\.0\.q\.weight") as info:
        convert_mtv_checkpoint(tmp_path / "missing", dst)
    assert "\n" not in str(info.value)
    vivit_like = {"Transformer": {"encoder_norm": {"scale": np.ones(4, np.float32)}}, "cls": np.zeros((1, 1, 4), np.float32)}
    (tmp_path / "vivit").write_bytes(flax_msgpack_bytes({"params": vivit_like}))
    with pytest.raises(TadInputError, match="not a MTV checkpoint: 2 parameters"):
        convert_mtv_checkpoint(tmp_path / "vivit", dst)
    flat = recipe(case)
    flat["bottleneck"] = np.zeros((1, 1, 4, 8), np.float32)
    (tmp_path / "bottleneck").write_bytes(flax_msgpack_bytes({"params": nest(flat)}))
    with pytest.raises(TadInputError, match="bottleneck fusion"):
        convert_mtv_checkpoint(tmp_path / "bottleneck", dst)
    assert not dst.exists()


def test_cli_and_releases(fx, tmp_path):
    case = fx["cases"]["mtv_b_tiny"]
    write_case(case, tmp_path / "checkpoint")
    result = CliRunner().invoke(tad_main, ["convert-checkpoint", "mtv", str(tmp_path / "checkpoint"), str(tmp_path / "m.pth")])
    assert result.exit_code == 0, result.output
    assert "backbone mtv_b_k400" in result.output and "--backbone-option depth=2" in result.output
    bad = CliRunner().invoke(tad_main, ["convert-checkpoint", "mtv", str(tmp_path / "checkpoint"), str(tmp_path / "x.pth"),
                                        "--num-frames", "8"])
    assert bad.exit_code != 0 and "--num-frames: ViViT model 1 only" in bad.output
    for name, dim in (("mtv_b_k400", 1344), ("mtv_l_k600", 2368)):
        with torch.device("meta"):
            model = BACKBONES.build(dict(type=name))
        assert model.spec.feature_dim == model.card.feature_dim == dim
        assert (model.spec.clip_len, model.spec.frame_interval, model.spec.crop) == (32, 2, 224)
        assert sum(p.numel() for p in model.parameters()) == fx["release_parameters"][name]


def test_extract_right_T_C_and_timestamps(tmp_path, real_videos_dir):
    """`tad extract` with a random-init two-view MTV (Ti/2 + Ti/1, 1 block each, fusion at
    layer 0, a 1-block global encoder), 4 frames every 2 at 32x32."""
    from tad.features.extract import ExtractOptions, extract_folder
    from tad.features.store import FeatureStore

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "highjump.mp4").symlink_to(real_videos_dir / "highjump.mp4")
    stride = 64
    opts = ExtractOptions(backbone="mtv_b_k400", random_init=True, clip_stride=stride, workers=1, batch_size=4,
                          short_side=36, crop=32,
                          backbone_kwargs=dict(views="Ti/2+Ti/1", depth=1, fusion_layers=(0,), global_depth=1,
                                               global_mlp_dim=64, img_size=32, num_frames=4))
    summary = extract_folder(videos, tmp_path / "f.h5", opts, progress=False)
    assert not summary.failed and summary.done == ["highjump"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == 384 and store.attrs["backbone"] == "mtv_b_k400"
    assert (store.options["clip_len"], store.options["frame_interval"]) == (4, 2)
    item = store["highjump"]
    span = (4 - 1) * 2 + 1
    frames = int(round(item.attrs["duration"] * 30.0))
    assert item.features.shape[1] == 384 and abs(item.features.shape[0] - ((frames - span) // stride + 1)) <= 1
    assert np.isfinite(item.features).all() and np.abs(item.features).max() > 0
    np.testing.assert_allclose(np.diff(item.timestamps), stride / 30.0, atol=2e-3)


def test_options_are_checked():
    tiny = dict(views="Ti/2+Ti/1", depth=1, fusion_layers=(0,), global_depth=1, global_mlp_dim=64, img_size=32,
                num_frames=4)
    for bad, match in ((dict(variant="x"), "variant"), (dict(views="Q/2"), "bad view"), (dict(depth=0), "depth"),
                       (dict(img_size=40), "multiple"), (dict(views="Ti/3+Ti/1"), "multiple"),
                       (dict(attn_impl="flash9"), "attn_impl"), (dict(global_heads=7), "global_heads")):
        with pytest.raises(TadInputError, match=match):
            BACKBONES.build(dict(type="mtv_b_k400", **{**tiny, **bad}))
    model = BACKBONES.build(dict(type="mtv_b_k400", **tiny)).eval()
    with pytest.raises(TadInputError, match="4 frames at 32x32") as info:
        model(torch.zeros(1, 3, 4, 48, 48))
    assert "\n" not in str(info.value)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 4, 32, 32)).shape == (2, 384)
        assert model(torch.zeros(2, 3, 4, 32, 32), spatial_grid=2).shape == (2, 384, 2, 2)
