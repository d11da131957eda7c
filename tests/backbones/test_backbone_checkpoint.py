"""load_backbone_checkpoint: official .pyth dicts, Caffe2 .pkl, and clear errors for bad files."""
from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import file_sha256, load_backbone_checkpoint
from tad.features.backbones.slowfast import SlowFastR50
from tad.features.backbones.tada2d import TAda2DR50

from parity_recipe import official_tensors, recipe_input


def _assert_state_equal(model, expected: dict[str, torch.Tensor]) -> None:
    got = model.state_dict()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_tada_pyth_with_module_prefix_and_head(tmp_path, tada_state):
    # as saved by the official trainer under DDP: {'model_state': {'module.backbone.*', 'module.head.*'}, ...}
    ckpt = {"epoch": 100, "optimizer_state": {}, "cfg": "yaml text",
            "model_state": {"module." + k: torch.from_numpy(v) for k, v in tada_state.items()}}
    path = tmp_path / "tada2d_8x8.pyth"
    torch.save(ckpt, path)
    model = load_backbone_checkpoint(TAda2DR50().eval(), path)
    _assert_state_equal(model, official_tensors(tada_state, prefix_strip="backbone."))
    reference = TAda2DR50().eval()
    reference.load_state_dict(official_tensors(tada_state, prefix_strip="backbone."), strict=True)
    x = recipe_input(0, 2, size=32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


def test_state_dict_and_bare_layouts(tmp_path, tada_state):
    bare = {k: torch.from_numpy(v) for k, v in tada_state.items()}
    for name, obj in {"sd.pth": {"state_dict": bare}, "bare.pt": bare}.items():
        torch.save(obj, tmp_path / name)
        model = load_backbone_checkpoint(TAda2DR50(), tmp_path / name)
        _assert_state_equal(model, official_tensors(tada_state, prefix_strip="backbone."))


def test_slowfast_caffe2_pkl(tmp_path, slowfast_state, caffe2_names):
    to_blob = {key: blob for blob, key in caffe2_names.items()}
    blobs = {to_blob[k]: v for k, v in slowfast_state.items()}  # numpy arrays, no num_batches_tracked
    blobs["pred_w"] = blobs["pred_w"].reshape(400, 2304)
    blobs.update({"model_iter": np.array(1000), "res2_0_branch2a_w_momentum": np.zeros(3), "lr": np.array(0.1)})
    path = tmp_path / "SLOWFAST_8x8_R50.pkl"
    with open(path, "wb") as handle:
        pickle.dump({"blobs": blobs}, handle, protocol=2)
    model = load_backbone_checkpoint(SlowFastR50().eval(), path)
    _assert_state_equal(model, official_tensors(slowfast_state))


def test_slowfast_pyth_same_weights_as_caffe2(tmp_path, slowfast_state):
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": {k: torch.from_numpy(v) for k, v in slowfast_state.items()}, "epoch": 196}, path)
    model = load_backbone_checkpoint(SlowFastR50(), path)
    _assert_state_equal(model, official_tensors(slowfast_state))


def test_truncated_checkpoint_gives_one_line_error(tmp_path, tada_state):
    path = tmp_path / "full.pyth"
    torch.save({"model_state": {k: torch.from_numpy(v) for k, v in list(tada_state.items())[:20]}}, path)
    cut = tmp_path / "cut.pyth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(TAda2DR50(), cut)
    message = str(info.value)
    assert message.startswith(str(cut)) and "cannot read checkpoint" in message and "\n" not in message
    with pytest.raises(TadInputError, match="not found"):
        load_backbone_checkpoint(TAda2DR50(), tmp_path / "missing.pyth")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(TadInputError, match="cannot read checkpoint"):
        load_backbone_checkpoint(SlowFastR50(), tmp_path / "junk.pkl")


def test_wrong_model_lists_missing_and_unexpected(tmp_path, tada_state):
    path = tmp_path / "tada.pyth"
    torch.save({"model_state": {k: torch.from_numpy(v) for k, v in tada_state.items()}}, path)
    slowfast = SlowFastR50()
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(slowfast, path)
    message = str(info.value)
    n_sf = sum(1 for k in slowfast.state_dict() if not k.endswith("num_batches_tracked"))
    assert f"{n_sf} missing keys: s1.pathway0_stem.conv.weight" in message
    assert "unexpected keys: conv1.a.weight" in message and "(+" in message
    assert "another model" in message and "\n" not in message


def test_shape_mismatch_and_missing_keys_are_named(tmp_path, tada_state):
    state = {k: torch.from_numpy(v) for k, v in tada_state.items()}
    state["backbone.conv1.a.weight"] = torch.zeros(64, 3, 3, 7, 7)
    del state["backbone.conv5.res_3.conv_branch.c_bn.bias"]
    path = tmp_path / "bad.pyth"
    torch.save({"model_state": state}, path)
    with pytest.raises(TadInputError) as info:
        load_backbone_checkpoint(TAda2DR50(), path)
    message = str(info.value)
    assert "1 missing keys: conv5.res_3.conv_branch.c_bn.bias" in message
    assert "1 shape mismatches: conv1.a.weight (64, 3, 3, 7, 7) vs model (64, 3, 1, 7, 7)" in message


def test_file_sha256(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
