"""ViViT (scenic): the Flax checkpoint converter and the backbone, against the official scenic
model on seeded weights (fixtures/vivit_parity_seeded.json, see fixtures/README.md).

Each test writes a checkpoint in scenic's exact layout (the official param tree names and
shapes, serialised as flax.serialization does: msgpack with ndarray extension types), converts
it with ``tad convert-checkpoint vivit`` and loads the result strictly."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import msgpack
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.utils.flop_counter import FlopCounterMode

from tad.cli import main as tad_main
from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.convert_vivit import convert_vivit_checkpoint
from tad.features.backbones.flax_msgpack import read_flax_checkpoint
from tad.features.backbones.vivit import VIVIT_SIZES, ViViT
from tad.features.extract import ExtractOptions, extract_folder
from tad.features.registry import BACKBONES
from tad.features.store import FeatureStore

from parity_recipe import flax_recipe_params, zero_centred_input

FIXTURE = Path(__file__).parent / "fixtures" / "vivit_parity_seeded.json"


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


# ---- writing scenic checkpoints the way flax.serialization does --------------------------------
def _ext(obj: object) -> msgpack.ExtType:
    if isinstance(obj, np.ndarray):  # flax _MsgpackExtType.ndarray
        return msgpack.ExtType(1, msgpack.packb((obj.shape, obj.dtype.name, obj.tobytes("C")), use_bin_type=True))
    if isinstance(obj, np.generic):  # npscalar
        return msgpack.ExtType(3, msgpack.packb(((), obj.dtype.name, np.asarray(obj).tobytes("C")), use_bin_type=True))
    raise TypeError(type(obj))


def _sorted_tree(tree: object) -> object:  # jax.tree_util rebuilds dicts with sorted keys
    return {k: _sorted_tree(tree[k]) for k in sorted(tree)} if isinstance(tree, dict) else tree


def flax_msgpack_bytes(tree: dict) -> bytes:
    return msgpack.packb(_sorted_tree(tree), default=_ext, strict_types=True)


def nest(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        *scopes, leaf = key.split("/")
        node = tree
        for scope in scopes:
            node = node.setdefault(scope, {})
        node[leaf] = value
    return tree


def scenic_train_state(params: dict, layout: str = "flax.optim") -> dict:
    """scenic's saved train state: flax.optim (2021 releases) or optax (current TrainState)."""
    if layout == "flax.optim":
        return {"optimizer": {"target": params, "state": {"step": np.int64(7)}}, "global_step": 7, "model_state": {}}
    return {"global_step": 7, "opt_state": {"count": np.int32(7)}, "params": params, "model_state": {},
            "rng": np.zeros(2, np.uint32), "metadata": {"chrono": {"accum_train_time": 1.5}}}


def write_case(case: dict, path: Path, layout: str = "flax.optim", drop: str | None = None) -> dict[str, np.ndarray]:
    flat = flax_recipe_params(case["keys"], case["seed"])
    params = nest({k: v for k, v in flat.items() if drop is None or not k.startswith(drop)})
    path.write_bytes(flax_msgpack_bytes(scenic_train_state(params, layout)))
    return flat


def model_for(case: dict, **overrides) -> ViViT:
    args = case["model_args"]
    kwargs = dict(model=args["model"], width=args["width"], heads=args["heads"],
                  mlp_dim=args["mlp_dim"], depth=args["depth"], img_size=case["size"], num_frames=case["T"])
    if args["model"] == "factorised_encoder":
        kwargs["temporal_depth"] = args["temporal_depth"]
    kwargs.update(overrides)
    return ViViT(**kwargs).eval()


def converted(case: dict, tmp_path: Path, layout: str = "flax.optim") -> tuple[ViViT, dict]:
    src, dst = tmp_path / "checkpoint_7", tmp_path / "vivit.pth"
    flat = write_case(case, src, layout)
    meta = convert_vivit_checkpoint(tmp_path, dst, num_frames=case["T"], img_size=case["size"])
    model = load_backbone_checkpoint(model_for(case), dst)
    return model, dict(meta=meta, flat=flat, dst=dst)


# ---- the writer is flax's format ------------------------------------------------------------------
def test_writer_matches_flax_serialization_bytes(fx, tmp_path):
    """The bytes flax.serialization.msgpack_serialize wrote for the m1_tiny train state (sha256
    recorded in the fixture) are the bytes this test's writer produces."""
    case = fx["cases"]["m1_tiny"]
    write_case(case, tmp_path / "ckpt")
    assert hashlib.sha256((tmp_path / "ckpt").read_bytes()).hexdigest() == fx["flax_msgpack_sha256"]["m1_tiny"]
    state = read_flax_checkpoint(tmp_path / "ckpt")
    assert state["global_step"] == 7 and int(state["optimizer"]["state"]["step"]) == 7
    assert state["optimizer"]["target"]["embedding"]["kernel"].shape == tuple(case["keys"]["embedding/kernel"])


def test_chunked_and_bfloat16_leaves(tmp_path):
    big = np.arange(12, dtype=np.float32)
    chunked = {"__msgpack_chunked_array__": True, "shape": {"0": 3, "1": 4},
               "chunks": {"0": big[:5], "1": big[5:]}}
    bf16 = np.array([1.5, -2.0, 3.140625], dtype=np.float32).view(np.uint32) >> 16
    payload = msgpack.packb(((3,), "bfloat16", bf16.astype(np.uint16).tobytes()), use_bin_type=True)
    raw = msgpack.packb({"a": chunked, "b": msgpack.ExtType(1, payload)}, default=_ext, strict_types=True)
    (tmp_path / "c").write_bytes(raw)
    state = read_flax_checkpoint(tmp_path / "c")
    np.testing.assert_array_equal(state["a"], big.reshape(3, 4))
    np.testing.assert_array_equal(state["b"], np.array([1.5, -2.0, 3.140625], np.float32))


# ---- parity with the official scenic model ----------------------------------------------------------
@pytest.mark.parametrize("name,layout", [("m1_tiny", "flax.optim"), ("fe_tiny", "optax")])
@pytest.mark.parametrize("impl", ["sdpa", "math"])
def test_converted_checkpoint_matches_official(fx, tmp_path, name, layout, impl):
    case = fx["cases"][name]
    model, _ = converted(case, tmp_path, layout)
    model.set_attn_impl(impl)
    with torch.no_grad():
        feature = model(zero_centred_input(case["seed"], case["T"], case["size"]))
    assert feature.shape == (1, case["model_args"]["width"])
    assert float(np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max()) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["m1_b_d1", "fe_l_d1"])
def test_full_width_reduced_depth_matches_official(fx, tmp_path, name):
    """ViViT-B (model 1) and ViViT-L FE (model 2) at full width, one block per transformer."""
    case = fx["cases"][name]
    model, _ = converted(case, tmp_path)
    with torch.no_grad():
        feature = model(zero_centred_input(case["seed"], case["T"], case["size"]))
    assert float(np.abs(feature[0].double().numpy() - np.asarray(case["feature"])).max()) <= 1e-4


def _manual_state(flat: dict[str, np.ndarray], depth: int) -> dict[str, torch.Tensor]:
    """Model 1's state dict written out key by key from the Flax tensors (independent of the converter)."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    k = flat["embedding/kernel"]
    state = {"patch_embed.proj.weight": t(k.transpose(4, 3, 0, 1, 2)), "patch_embed.proj.bias": t(flat["embedding/bias"]),
             "encoder.cls_token": t(flat["cls"]), "encoder.pos_embed": t(flat["Transformer/posembed_input/pos_embedding"]),
             "encoder.norm.weight": t(flat["Transformer/encoder_norm/scale"]),
             "encoder.norm.bias": t(flat["Transformer/encoder_norm/bias"])}
    for i in range(depth):
        f, p = f"Transformer/encoderblock_{i}/", f"encoder.blocks.{i}."
        att = f + "MultiHeadDotProductAttention_0/"
        c = k.shape[-1]
        state[p + "attn.qkv.weight"] = t(np.concatenate([flat[att + n + "/kernel"].reshape(c, c).T
                                                         for n in ("query", "key", "value")]))
        state[p + "attn.qkv.bias"] = t(np.concatenate([flat[att + n + "/bias"].reshape(c) for n in ("query", "key", "value")]))
        state[p + "attn.proj.weight"] = t(flat[att + "out/kernel"].reshape(c, c).T)
        state[p + "attn.proj.bias"] = t(flat[att + "out/bias"])
        for ln, ours in (("LayerNorm_0", "norm1"), ("LayerNorm_1", "norm2")):
            state[p + ours + ".weight"], state[p + ours + ".bias"] = t(flat[f + ln + "/scale"]), t(flat[f + ln + "/bias"])
        for dense, ours in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
            state[p + f"mlp.{ours}.weight"] = t(flat[f + f"MlpBlock_0/{dense}/kernel"].T)
            state[p + f"mlp.{ours}.bias"] = t(flat[f + f"MlpBlock_0/{dense}/bias"])
    return state


def test_round_trip_equals_model_built_from_the_same_tensors(fx, tmp_path):
    case = fx["cases"]["m1_tiny"]
    model, info = converted(case, tmp_path)
    reference = model_for(case)
    reference.load_state_dict(_manual_state(info["flat"], case["model_args"]["depth"]), strict=True)
    x = zero_centred_input(3, case["T"], case["size"])
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    saved = torch.load(info["dst"], weights_only=True)  # plain tensors: the safe loader reads it
    assert saved["meta"]["backbone"] == "vivit_b16x2_k400" and "output_projection" not in str(list(saved["state_dict"]))
    assert saved["meta"]["options"] == dict(width=32, heads=2, mlp_dim=64, depth=2, img_size=48, num_frames=4)


# ---- bad input: one line naming the file ---------------------------------------------------------------
def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_bad_checkpoints_are_one_line_errors(fx, tmp_path):
    case = fx["cases"]["m1_tiny"]
    dst = tmp_path / "out.pth"
    (tmp_path / "junk").write_bytes(b"\xc1not msgpack at all")
    with pytest.raises(TadInputError, match="not a Flax msgpack checkpoint") as info:
        convert_vivit_checkpoint(tmp_path / "junk", dst)
    assert str(tmp_path / "junk") in _one_line(info)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "torch.pth")  # a zip, not msgpack
    with pytest.raises(TadInputError, match="not a Flax msgpack checkpoint"):
        convert_vivit_checkpoint(tmp_path / "torch.pth", dst)
    write_case(case, tmp_path / "full")
    (tmp_path / "cut").write_bytes((tmp_path / "full").read_bytes()[:3000])
    with pytest.raises(TadInputError, match="not a Flax msgpack checkpoint"):
        convert_vivit_checkpoint(tmp_path / "cut", dst)
    # another scenic model (MTV-like multiview names): refused, listing the foreign parameters
    mtv = {"MultiviewEncoder": {"encoderblock_0_view0": {"LayerNorm_0": {"scale": np.ones(4, np.float32)}}},
           "cls_view0": np.zeros((1, 1, 4), np.float32), "embedding_view0": {"kernel": np.zeros((2, 16, 16, 3, 4), np.float32)}}
    (tmp_path / "mtv").write_bytes(flax_msgpack_bytes({"params": mtv}))
    with pytest.raises(TadInputError, match="not a ViViT checkpoint: 3 parameters") as info:
        convert_vivit_checkpoint(tmp_path / "mtv", dst)
    assert "MultiviewEncoder/encoderblock_0_view0/LayerNorm_0/scale" in _one_line(info)
    # missing keys: the last block's MLP is absent
    write_case(case, tmp_path / "missing", drop="Transformer/encoderblock_1/MlpBlock_0")
    with pytest.raises(TadInputError, match=r"4 missing keys: encoder\.blocks\.1\.mlp\.fc1\.weight") as info:
        convert_vivit_checkpoint(tmp_path / "missing", dst, num_frames=case["T"], img_size=case["size"])
    _one_line(info)
    # the position table does not fit the clip the backbone is built for
    with pytest.raises(TadInputError, match=r"shape mismatches: encoder\.pos_embed \(1, 19, 32\) vs model \(1, 3137, 32\)"):
        convert_vivit_checkpoint(tmp_path / "full", dst)
    assert not dst.exists() and not list(tmp_path.glob("*.partial"))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(TadInputError, match="directory holds no Flax checkpoint"):
        convert_vivit_checkpoint(tmp_path / "empty_dir", dst)


def test_cli_convert_then_refusals(fx, tmp_path):
    case = fx["cases"]["fe_tiny"]
    write_case(case, tmp_path / "checkpoint")
    runner = CliRunner()
    result = runner.invoke(tad_main, ["convert-checkpoint", "vivit", str(tmp_path / "checkpoint"), str(tmp_path / "fe.pth")])
    assert result.exit_code == 0, result.output
    assert "backbone vivit_b16x2_fe_k400" in result.output
    assert "--backbone-option width=32" in result.output and "--backbone-option num_frames=6" in result.output
    model = load_backbone_checkpoint(model_for(case), tmp_path / "fe.pth")
    assert torch.equal(model.temporal.cls_token.reshape(-1),
                       torch.from_numpy(flax_recipe_params(case["keys"], case["seed"])["cls_TemporalTransformer"]).reshape(-1))
    same = runner.invoke(tad_main, ["convert-checkpoint", "vivit", str(tmp_path / "checkpoint"), str(tmp_path / "checkpoint")])
    assert same.exit_code != 0 and "refusing to overwrite" in same.output and "Traceback" not in same.output
    bad = runner.invoke(tad_main, ["convert-checkpoint", "vivit", str(tmp_path / "checkpoint"), str(tmp_path / "x.pth"),
                                   "--num-frames", "0"])
    assert bad.exit_code != 0 and "--num-frames: must be >= 1, got 0" in bad.output
    wrong = runner.invoke(tad_main, ["convert-checkpoint", "vivit", str(tmp_path / "checkpoint"), str(tmp_path / "x.pth"),
                                     "--backbone", "videomae_vit_b"])
    assert wrong.exit_code != 0 and "not a registered ViViT backbone" in wrong.output


# ---- registered releases ------------------------------------------------------------------------------
RELEASES = {"vivit_b16x2_k400": ("b", "unfactorised", 768), "vivit_b16x2_fe_k400": ("b", "factorised_encoder", 768),
            "vivit_l16x2_fe_k400": ("l", "factorised_encoder", 1024)}


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_releases_spec_card_and_parameter_count(fx, name):
    size, kind, width = RELEASES[name]
    with torch.device("meta"):
        model = BACKBONES.build(dict(type=name))
    assert (model.size, model.model, model.spec.feature_dim, model.card.feature_dim) == (size, kind, width, width)
    spec = model.spec
    assert (spec.clip_len, spec.frame_interval, spec.short_side, spec.crop) == (32, 2, 256, 224)
    assert spec.mean == spec.std == (0.5, 0.5, 0.5)
    params = sum(p.numel() for p in model.parameters())
    assert params == fx["release_parameters"][name]  # the official model's, output_projection excluded
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, 32, 224, 224, device="meta"))
    assert abs(counter.get_total_flops() / 1e9 - model.card.gflops) < 0.1


def test_options_are_checked():
    for bad, match in ((dict(model="x"), "model"), (dict(size="q"), "size"), (dict(img_size=40), "multiple"),
                       (dict(attn_impl="flash9"), "attn_impl"), (dict(depth=0), "depth"), (dict(mlp_dim=0), "mlp_dim")):
        with pytest.raises(TadInputError, match=match):
            BACKBONES.build(dict(type="vivit_b16x2_k400", width=32, heads=2, **bad))
    model = ViViT(width=32, heads=2, mlp_dim=64, depth=1, img_size=32, num_frames=4).eval()
    with pytest.raises(TadInputError, match="4 frames at 32x32") as info:
        model(torch.zeros(1, 3, 4, 48, 48))
    _one_line(info)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 4, 32, 32), spatial_grid=2).shape == (2, 32, 2, 2)


# ---- tad extract ------------------------------------------------------------------------------------
def test_extract_right_T_C_and_timestamps(tmp_path, real_videos_dir):
    """Model 2 (factorised encoder), random init, reduced to 1+1 blocks, width 32, 32x32, 4 frames every 2."""
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "highjump.mp4").symlink_to(real_videos_dir / "highjump.mp4")
    stride = 64
    opts = ExtractOptions(backbone="vivit_b16x2_fe_k400", random_init=True, clip_stride=stride, workers=1,
                          batch_size=4, short_side=36, crop=32,
                          backbone_kwargs=dict(depth=1, temporal_depth=1, width=32, heads=2, mlp_dim=64, img_size=32,
                                               num_frames=4))
    summary = extract_folder(videos, tmp_path / "f.h5", opts, progress=False)
    assert not summary.failed and summary.done == ["highjump"]
    store = FeatureStore(tmp_path / "f.h5")
    assert store.feature_dim == 32 and store.attrs["backbone"] == "vivit_b16x2_fe_k400"
    options = store.options
    assert (options["clip_len"], options["frame_interval"]) == (4, 2) and options["mean"] == [0.5] * 3
    span = (4 - 1) * 2 + 1
    item = store["highjump"]
    frames = int(round(item.attrs["duration"] * 30.0))
    assert item.features.shape[1] == 32 and abs(item.features.shape[0] - ((frames - span) // stride + 1)) <= 1
    assert np.isfinite(item.features).all() and np.abs(item.features).max() > 0
    np.testing.assert_allclose(np.diff(item.timestamps), stride / 30.0, atol=2e-3)
    assert math.isclose(item.timestamps[0], span / 30.0 / 2, abs_tol=2e-3)


def test_sizes_table():
    assert VIVIT_SIZES["b"].width == 768 and VIVIT_SIZES["l"].temporal_depth == 24
