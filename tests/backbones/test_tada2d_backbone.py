"""TAda2D-R50: official-name strict loading, parity with the official outputs, both TAdaConv forms."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.tada2d import TAda2DR50
from tad.features.registry import BACKBONES

from parity_recipe import official_tensors, recipe_input


@pytest.fixture(scope="module")
def tada_model(tada_state):
    model = TAda2DR50().eval()
    model.load_state_dict(official_tensors(tada_state, prefix_strip="backbone."), strict=True)
    return model


def test_keys_and_shapes_equal_official(parity_fixture):
    official = {k[len("backbone."):]: tuple(v) for k, v in parity_fixture["tada2d_r50_8x8"]["keys"].items()
                if k.startswith("backbone.")}
    ours = {k: tuple(v.shape) for k, v in TAda2DR50().state_dict().items()}
    assert ours == official


def test_registry_presets_and_spec():
    m8 = BACKBONES.build(dict(type="tada2d_r50"))
    m16 = BACKBONES.build(dict(type="tada2d_r50", preset="16x5"))
    assert (m8.spec.clip_len, m8.spec.frame_interval, m8.spec.feature_dim) == (8, 8, 2048)
    assert (m16.spec.clip_len, m16.spec.frame_interval, m16.spec.feature_dim) == (16, 5, 2048)
    assert m8.spec.mean == (0.45,) * 3 and m8.spec.std == (0.225,) * 3
    assert (m8.spec.short_side, m8.spec.crop, m8.spec.fps, m8.spec.clip_stride) == (256, 224, 30.0, 4)
    # same weights for both presets (same keys, same seeded init)
    s8, s16 = m8.state_dict(), m16.state_dict()
    assert s8.keys() == s16.keys() and all(torch.equal(s8[k], s16[k]) for k in s8)
    with pytest.raises(TadInputError, match="preset"):
        TAda2DR50(preset="32x2")


@pytest.mark.slow
def test_parity_with_official_feature(parity_fixture, tada_model):
    case = parity_fixture["tada2d_r50_8x8"]
    ref = np.asarray(case["seed0_T8"]["feature"], dtype=np.float64)
    with torch.no_grad():
        feature = tada_model(recipe_input(case["seed0_T8"]["seed"], case["seed0_T8"]["T"]))
    assert feature.shape == (1, 2048)
    err = np.abs(feature[0].double().numpy() - ref).max()
    assert err <= 1e-4, f"max abs error {err:.2e}"


def test_fast_and_grouped_tadaconv_agree(tada_model):
    x = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        tada_model.set_tada_impl("grouped")
        grouped = tada_model(x, spatial_grid=2)
        tada_model.set_tada_impl("fast")
        fast = tada_model(x, spatial_grid=2)
    assert fast.shape == (2, 2048, 2, 2)
    assert (fast - grouped).abs().max().item() <= 1e-4 * max(1.0, grouped.abs().max().item())
    # the grid averages back to the pooled feature at this size (2x2 map -> 2x2 grid)
    with torch.no_grad():
        pooled = tada_model(x)
    torch.testing.assert_close(fast.mean(dim=(2, 3)), pooled, atol=1e-5, rtol=1e-5)


def test_random_init_is_deterministic_and_finite():
    x = torch.randn(1, 3, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b = TAda2DR50(init_seed=7).eval(), TAda2DR50(init_seed=7).eval()
    with torch.no_grad():
        fa, fb = a(x), b(x)
    assert torch.equal(fa, fb) and torch.isfinite(fa).all() and fa.abs().max() < 1e3
