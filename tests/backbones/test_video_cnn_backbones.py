"""R3D-18, MC3-18, R(2+1)D-18, TSP R(2+1)D-34 and S3D (two layouts): official key layouts,
parity with the official code's features (fixtures/video_cnn_parity.json, see fixtures/README.md),
strict loading of the released layouts, and `tad extract` on a real video."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.checkpoint import load_backbone_checkpoint
from tad.features.backbones.s3d import torchvision_key
from tad.features.backbones.video_resnet import midplanes
from tad.features.extract import ExtractOptions, extract_folder
from tad.features.registry import BACKBONES
from tad.features.store import FeatureStore

from parity_recipe import recipe_input, recipe_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "video_cnn_parity.json"
#: registry name -> (fixture case, official head prefixes that the backbone ignores)
CASES = {
    "r3d_18": ("r3d_18", ("fc.",)),
    "mc3_18": ("mc3_18", ("fc.",)),
    "r2plus1d_18": ("r2plus1d_18", ("fc.",)),
    "r2plus1d_34_tsp": ("r2plus1d_34_tsp", ("fc1.", "fc2.")),
    "s3d": ("s3d_kylemin", ("fc.",)),
    "s3d_tv": ("s3d_torchvision", ("classifier.",)),
}


@pytest.fixture(scope="module")
def parity() -> dict:
    return json.loads(FIXTURE.read_text())


_STATES: dict[str, dict[str, torch.Tensor]] = {}


def official_state(parity: dict, name: str) -> dict[str, torch.Tensor]:
    """Recipe weights under the official key names, heads included (as released); a fresh dict
    of shared tensors, drawn once per backbone."""
    if name not in _STATES:
        case = parity[CASES[name][0]]
        _STATES[name] = {k: torch.from_numpy(v) for k, v in recipe_state_dict(case["keys"], case["seed0"]["seed"]).items()}
    return dict(_STATES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_keys_and_shapes_equal_official(parity, name):
    case, heads = CASES[name]
    official = {k: tuple(v) for k, v in parity[case]["keys"].items() if not k.startswith(heads)}
    model = BACKBONES.build(dict(type=name))
    rename = torchvision_key if name == "s3d_tv" else (lambda k: k)
    ours = {rename(k): tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == official


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_with_official_feature(parity, name, tmp_path):
    """The released layout, written to a file, loads strictly and reproduces the official feature."""
    path = tmp_path / "weights.pth"
    state = official_state(parity, name)
    if name == "s3d":  # kylemin saved the DataParallel state_dict
        state = {"module." + k: v for k, v in state.items()}
    elif name == "r2plus1d_34_tsp":  # TSP's training checkpoints wrap it as {'model': ..., 'epoch': ...}
        state = {"model": state, "epoch": 5}
    torch.save(state, path)
    model = load_backbone_checkpoint(BACKBONES.build(dict(type=name)).eval(), path)
    seed = parity[CASES[name][0]]["seed0"]
    with torch.no_grad():
        feature = model(recipe_input(seed["seed"], seed["T"], seed["size"]))
    assert feature.shape == (1, model.spec.feature_dim) == (1, len(seed["feature"]))
    err = np.abs(feature[0].double().numpy() - np.asarray(seed["feature"])).max()
    assert err <= 1e-4, f"{name}: max abs error {err:.2e}"


def test_midplanes_per_block_in_torchvision_per_conv_in_tsp():
    tv = BACKBONES.build(dict(type="r2plus1d_18")).state_dict()
    tsp = BACKBONES.build(dict(type="r2plus1d_34_tsp")).state_dict()
    assert midplanes(64, 128) == 230 and midplanes(128, 128) == 288
    # first block of layer2: torchvision reuses the block's M (64 -> 128) for conv2; TSP recomputes it
    assert tv["layer2.0.conv2.0.0.weight"].shape == (230, 128, 1, 3, 3)
    assert tsp["features.layer2.0.conv2.0.0.weight"].shape == (288, 128, 1, 3, 3)
    for state, prefix in ((tv, ""), (tsp, "features.")):  # both stems: 45 mid-channels, not the formula's 83
        assert state[f"{prefix}stem.0.weight"].shape == (45, 3, 1, 7, 7)
        assert state[f"{prefix}stem.3.weight"].shape == (64, 45, 3, 1, 1)
    assert tsp["features.stem.1.running_var"].shape == (45,)
    model = BACKBONES.build(dict(type="r2plus1d_34_tsp"))
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d))


def test_s3d_layouts_load_into_the_same_model(parity, tmp_path):
    kylemin = official_state(parity, "s3d")
    to_tv = {k: torchvision_key(k) for k in kylemin if not k.startswith("fc.")}
    tv_path = tmp_path / "s3d-tv.pth"
    torch.save({to_tv[k]: v for k, v in kylemin.items() if k in to_tv}, tv_path)
    ky_path = tmp_path / "S3D_kinetics400.pt"
    torch.save({"module." + k: v for k, v in kylemin.items()}, ky_path)
    a = load_backbone_checkpoint(BACKBONES.build(dict(type="s3d_tv")), tv_path).state_dict()
    b = load_backbone_checkpoint(BACKBONES.build(dict(type="s3d")), ky_path).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_wrong_checkpoint_shape_mismatch_and_truncation(parity, tmp_path):
    r3d = tmp_path / "r3d_18.pth"
    torch.save(official_state(parity, "r3d_18"), r3d)
    with pytest.raises(TadInputError) as info:  # same keys, MC3's layers 2-4 are 1x3x3
        load_backbone_checkpoint(BACKBONES.build(dict(type="mc3_18")), r3d)
    message = str(info.value)
    assert message.startswith(str(r3d)) and "\n" not in message
    assert "shape mismatches: layer2.0.conv1.0.weight (128, 64, 3, 3, 3) vs model (128, 64, 1, 3, 3)" in message
    r2 = tmp_path / "r2plus1d_18.pth"
    torch.save(official_state(parity, "r2plus1d_18"), r2)
    with pytest.raises(TadInputError) as info:  # torchvision R(2+1)D-18 into TSP's R(2+1)D-34
        load_backbone_checkpoint(BACKBONES.build(dict(type="r2plus1d_34_tsp")), r2)
    message = str(info.value)
    assert "345 missing keys: features.stem.0.weight" in message
    assert "unexpected keys: layer1.0.conv1.0.0.weight" in message
    assert "another model" in message
    state = official_state(parity, "s3d")
    del state["base.15.branch3.1.bn.bias"]
    torch.save(state, tmp_path / "s3d_missing.pt")
    with pytest.raises(TadInputError, match="1 missing keys: base.15.branch3.1.bn.bias"):
        load_backbone_checkpoint(BACKBONES.build(dict(type="s3d")), tmp_path / "s3d_missing.pt")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(r3d.read_bytes()[: r3d.stat().st_size // 3])
    with pytest.raises(TadInputError, match="cannot read checkpoint"):
        load_backbone_checkpoint(BACKBONES.build(dict(type="r3d_18")), cut)


@pytest.mark.parametrize("name, clip_len, fps, dim", [
    ("r3d_18", 16, 15.0, 512), ("mc3_18", 16, 15.0, 512), ("r2plus1d_18", 16, 15.0, 512),
    ("r2plus1d_34_tsp", 16, 30.0, 512), ("s3d", 64, 25.0, 1024), ("s3d_tv", 128, 15.0, 1024)])
def test_spec_is_the_official_test_preprocessing(name, clip_len, fps, dim):
    spec = BACKBONES.build(dict(type=name)).spec
    assert (spec.clip_len, spec.frame_interval, spec.fps, spec.feature_dim) == (clip_len, 1, fps, dim)
    assert spec.crop == (224 if name.startswith("s3d") else 112)
    if name == "s3d":
        assert spec.mean == (0.5,) * 3 and spec.std == (0.5,) * 3
    else:
        assert spec.mean == (0.43216, 0.394666, 0.37645) and spec.std == (0.22803, 0.22145, 0.216989)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_extract_highjump_right_T_C_and_timestamps(tmp_path, real_videos_dir, name):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "highjump.mp4").symlink_to(real_videos_dir / "highjump.mp4")
    spec = BACKBONES.build(dict(type=name)).spec
    stride = max(spec.clip_len, int(6 * spec.fps))  # 2-4 clips of the 24 s video: shapes and timing, not throughput
    opts = ExtractOptions(backbone=name, random_init=True, short_side=48, crop=48, clip_stride=stride, workers=0,
                          batch_size=4)
    summary = extract_folder(videos, tmp_path / "f.h5", opts, progress=False)
    assert not summary.failed and summary.done == ["highjump"]
    store = FeatureStore(tmp_path / "f.h5")
    item = store["highjump"]
    frames = int(round(item.attrs["duration"] * spec.fps))  # resampled to the backbone's fps
    expected_t = (frames - spec.clip_len) // stride + 1
    assert store.feature_dim == spec.feature_dim and item.features.shape[1] == spec.feature_dim
    assert abs(item.features.shape[0] - expected_t) <= 1 and item.features.shape[0] >= 2
    assert np.isfinite(item.features.astype(np.float32)).all() and np.abs(item.features).max() > 0
    np.testing.assert_allclose(np.diff(item.timestamps), stride / spec.fps, atol=2e-3)
    np.testing.assert_allclose(item.timestamps[0], spec.clip_len / spec.fps / 2, atol=2e-3)


def test_tensor_only_files_load_safely_pickles_are_noted_once(parity, tmp_path, capsys):
    import argparse
    import pickle

    from tad.features.backbones.checkpoint import read_checkpoint

    state = official_state(parity, "r3d_18")
    plain = tmp_path / "r3d_18-b3b3357e.pth"
    torch.save(state, plain)
    read_checkpoint(plain)
    assert capsys.readouterr().err == ""  # weights_only=True sufficed: nothing to trust
    wrapped = tmp_path / "with_cfg.pyth"
    torch.save({"model_state": state, "cfg": argparse.Namespace(depth=18)}, wrapped)
    for _ in range(2):
        assert isinstance(read_checkpoint(wrapped)["cfg"], argparse.Namespace)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(str(wrapped)) and "TRUSTED" in err[0]
    blobs = tmp_path / "model.pkl"
    blobs.write_bytes(pickle.dumps({"blobs": {}}))
    read_checkpoint(blobs)
    assert "Caffe2 .pkl checkpoint (a pickle); unpickled as TRUSTED" in capsys.readouterr().err
