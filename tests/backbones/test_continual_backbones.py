"""Continual backbones (CoX3D, continual TSM): frame by frame = whole sequence, causal, X3D/TSM weights unchanged.

Lean: X3D-XS / TSM at a 32 px crop, a dozen frames, seeded weights (``parity_recipe``: every BN
random, so the residual branches and temporal convs all contribute).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from tad.features.backbones.cox3d import CoX3D
from tad.features.registry import BACKBONES

from parity_recipe import recipe_state_dict

TOL = 1e-4


def _seeded(name: str, seed: int = 3, **kwargs):
    model = BACKBONES.build(dict(type=name, crop=32, **kwargs)).eval()
    keys = {k: list(v.shape) for k, v in model.state_dict().items()}
    state = {k: torch.from_numpy(v) for k, v in recipe_state_dict(keys, seed).items()}
    missing = model.load_state_dict(state, strict=False)
    assert not missing.unexpected_keys and all(k.endswith("num_batches_tracked") for k in missing.missing_keys)
    return model


def _frames(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, n, 32, 32, generator=torch.Generator().manual_seed(seed))  # (1, 3, n, 32, 32)


def _split_runs(model, x: torch.Tensor, window: int, cuts: list[int]) -> torch.Tensor:
    state = model.init_state(1, window)
    bounds = [0, *cuts, x.shape[2]]
    with torch.inference_mode():
        return torch.cat([model.forward_steps(x[:, :, a:b], state) for a, b in zip(bounds, bounds[1:])], dim=2)


@pytest.fixture(scope="module")
def cox3d_xs():
    return _seeded("cox3d_xs")


@pytest.mark.parametrize("name", ["cox3d_xs", "tsm_mobilenetv2_continual"])
def test_whole_sequence_equals_frame_by_frame(name, cox3d_xs):
    """Offline (one call over all frames) = stream (one call per frame) = any split, warm-up included."""
    model = cox3d_xs if name == "cox3d_xs" else _seeded(name)
    x = _frames(11)
    whole = _split_runs(model, x, 4, [])  # (1, C, 11)
    per_frame = _split_runs(model, x, 4, list(range(1, 11)))
    uneven = _split_runs(model, x, 4, [3, 4, 9])
    assert whole.shape == (1, model.spec.feature_dim, 11)
    assert whole.abs().mean() > 1e-3  # not a degenerate all-zero feature
    assert (whole - per_frame).abs().max() <= TOL and (whole - uneven).abs().max() <= TOL


def test_cox3d_is_causal_and_mixes_past_frames(cox3d_xs):
    x = _frames(10)
    base = _split_runs(cox3d_xs, x, 4, [])
    future = x.clone()
    future[:, :, 6:] = _frames(4, seed=5)
    changed = _split_runs(cox3d_xs, future, 4, [])
    assert torch.equal(base[:, :, :6], changed[:, :, :6])  # no padding of the future: steps 0-5 untouched
    assert (base[:, :, 6:] - changed[:, :, 6:]).abs().max() > 1e-3
    past = x.clone()
    past[:, :, 0] = 0.0  # a past frame outside the last window still reaches step 6 (convs' receptive field)
    assert (_split_runs(cox3d_xs, past, 2, [])[:, :, 6] - _split_runs(cox3d_xs, x, 2, [])[:, :, 6]).abs().max() > 1e-6


def _reference_causal_x3d(model: CoX3D, x: torch.Tensor, window: int) -> torch.Tensor:
    """The offline formulation, written independently: every temporal conv of the X3D modules on the whole
    sequence left-padded with k - 1 zero frames (no right padding), BN unfolded, and every temporal mean a
    loop over each step's window of the last ``window`` steps (fewer at the start)."""

    def tconv(conv, bn, h):
        k = conv.kernel_size[0]
        h = F.pad(h, (0, 0, 0, 0, k - 1, 0))
        return bn(F.conv3d(h, conv.weight, None, (1, *conv.stride[1:]), (0, *conv.padding[1:]), 1, conv.groups))

    def wmean(v):  # (B, C, n) -> (B, C, n)
        return torch.stack([v[:, :, max(0, t - window + 1):t + 1].mean(dim=2) for t in range(v.shape[2])], dim=2)

    stem = model.s1.pathway0_stem
    h = F.relu(tconv(stem.conv, stem.bn, stem.conv_xy(x)))
    for stage in range(2, 6):
        for i in range(model.depths[stage - 2]):
            block = model.get_submodule(f"s{stage}.pathway0_res{i}")
            t = block.branch2
            y = F.relu(t.a_bn(t.a(h)))
            y = tconv(t.b, t.b_bn, y)
            if t.se is not None:
                s = wmean(y.mean(dim=(3, 4)))[:, :, :, None, None]
                y = y * torch.sigmoid(t.se.fc2(F.relu(t.se.fc1(s))))
            y = t.c_bn(t.c(F.silu(y)))
            short = h if block.branch1 is None else block.branch1_bn(block.branch1(h))
            h = F.relu(short + y)
    h = F.relu(model.head.conv_5_bn(model.head.conv_5(h)))
    pooled = wmean(h.mean(dim=(3, 4)))
    return F.relu(model.head.lin_5(pooled[:, :, :, None, None]))[:, :, :, 0, 0]


def test_cox3d_equals_left_padded_x3d_with_sliding_means(cox3d_xs):
    x = _frames(9, seed=2)
    with torch.inference_mode():
        ref = _reference_causal_x3d(cox3d_xs, x, window=4)
    assert (_split_runs(cox3d_xs, x, 4, list(range(1, 9))) - ref).abs().max() <= TOL


def test_cox3d_loads_x3d_weights_unchanged(tmp_path):
    from tad.features.backbones.checkpoint import load_backbone_checkpoint

    x3d = BACKBONES.build(dict(type="x3d_s", crop=32))
    co = BACKBONES.build(dict(type="cox3d_s", crop=32, init_seed=7))
    assert {k: v.shape for k, v in co.state_dict().items()} == {k: v.shape for k, v in x3d.state_dict().items()}
    path = tmp_path / "x3d_s.pyth"  # the SlowFast layout, classifier included
    state = dict(x3d.state_dict(), **{"head.projection.weight": torch.zeros(400, 2048),
                                      "head.projection.bias": torch.zeros(400)})
    torch.save({"model_state": state}, path)
    load_backbone_checkpoint(co, path)
    assert all(torch.equal(v, x3d.state_dict()[k]) for k, v in co.state_dict().items())
    assert co.spec.clip_len == 13 and co.spec.frame_interval == 6 and co.spec.crop == 32 and co.spec.extra["continual"] == "cox3d"
    assert co.spec.extra["receptive_field_steps"] == 57 and co.spec.extra["delay_steps"] == 0
    assert "continual mode" in co.card.continual[0] and "delay 0" in co.card.continual[0]
    assert co.checkpoint_ignore_prefixes == x3d.checkpoint_ignore_prefixes


@pytest.mark.parametrize("name,clip_name,clip_kwargs", [("tsm_mobilenetv2_continual", "tsm_mobilenetv2_online", {}),
                                                        ("tsm_r50_continual", "tsm_r50", {"online": True})])
def test_continual_tsm_first_window_is_the_online_clip(name, clip_name, clip_kwargs):
    """From a zero shift buffer, the continual feature after 8 frames is the clip-mode online TSM feature of
    those 8 frames (the parity-tested backbone); later windows keep the buffer (the clip restarts it)."""
    if name == "tsm_r50_continual":  # seeded init with unit (not zero) last BNs: the shifted branches count
        model = BACKBONES.build(dict(type=name, crop=32)).eval()
        for module in model.modules():
            if hasattr(module, "bn3"):
                torch.nn.init.constant_(module.bn3.weight, 1.0)
    else:
        model = _seeded(name)
    clip_model = BACKBONES.build(dict(type=clip_name, crop=32, **clip_kwargs)).eval()
    clip_model.load_state_dict(model.state_dict())
    x = _frames(10, seed=4)
    steps = _split_runs(model, x, 8, list(range(1, 10)))  # (1, C, 10)
    with torch.inference_mode():
        first, second = clip_model(x[:, :, :8]), clip_model(x[:, :, 2:10])
    assert (steps[:, :, 7] - first).abs().max() <= TOL
    assert (steps[:, :, 9] - second).abs().max() > 1e-4  # frame 1's shifted channels still reach frame 2


def test_clip_forward_is_last_step_and_no_grid(cox3d_xs):
    x = _frames(4)
    with torch.inference_mode():
        assert (cox3d_xs(x) - _split_runs(cox3d_xs, x, 4, [])[:, :, -1]).abs().max() == 0
    with pytest.raises(ValueError, match="spatial grid"):
        cox3d_xs(x, spatial_grid=2)


def test_feature_stream_windows_phases_and_padding(cox3d_xs):
    """ContinualFeatureStream: features at window ends only (the clip extractor's windows), the same whether
    frames come in one run or one by one; a short video gets one padded window."""
    from tad.features.clip_sampling import clip_windows
    from tad.features.continual_features import ContinualFeatureStream, needed_phases

    assert needed_phases(6, 4) == [0, 2, 4] and needed_phases(12, 4) == [0, 4, 8] and needed_phases(2, 4) == [0]
    frames = np.random.default_rng(0).integers(0, 256, (22, 32, 32, 3), dtype=np.uint8)
    whole = ContinualFeatureStream(cox3d_xs, 4, 3, 2)
    got = whole.push(frames) + whole.finish()
    one = ContinualFeatureStream(cox3d_xs, 4, 3, 2)
    singles = [item for k in range(22) for item in one.push(frames[k:k + 1])] + one.finish()
    windows = clip_windows(22, 4, 3, 2)
    assert [i for i, _ in got] == [i for i, _ in singles] == list(range(len(windows)))
    assert max(np.abs(a - b).max() for (_, a), (_, b) in zip(got, singles)) <= TOL
    assert len(windows) == 7 and whole.steps == 22 and whole.steps_per_window == 2  # phases 0, 1, 2: every frame once
    # window i's feature = its phase's stream after the window's last frame, clip_len steps of its frames
    state = cox3d_xs.init_state(1, 4)
    from tad.features.frame_transforms import normalize_clips

    phase1 = normalize_clips(torch.from_numpy(frames[1::3])[None], cox3d_xs.spec.mean, cox3d_xs.spec.std)
    with torch.inference_mode():
        direct = cox3d_xs.forward_steps(phase1, state)[0]  # (C, 7): frames 1, 4, ..., 19
    assert np.abs(got[5][1] - direct[:, 6].numpy()).max() <= TOL  # window 5: frames 10..19, phase 1, its 7th step
    short = ContinualFeatureStream(cox3d_xs, 4, 3, 2)
    assert short.push(frames[:5]) == []
    padded = short.finish()
    assert [i for i, _ in padded] == [0]
    with torch.inference_mode():
        clip = normalize_clips(torch.from_numpy(frames[[0, 3, 4, 4]])[None], cox3d_xs.spec.mean, cox3d_xs.spec.std)
        assert np.abs(padded[0][1] - cox3d_xs(clip)[0].numpy()).max() <= TOL
