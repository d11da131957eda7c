"""SlowFast-R50 8x8: official keys, parity with the official outputs, Caffe2 blob naming."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tad.errors import TadInputError
from tad.features.backbones.slowfast import SlowFastR50, slow_indices
from tad.features.registry import BACKBONES

from parity_recipe import official_tensors, recipe_input


def test_keys_and_shapes_equal_official(parity_fixture):
    official = {k: tuple(v) for k, v in parity_fixture["slowfast_r50_8x8"]["keys"].items()
                if not k.startswith("head.")}
    ours = {k: tuple(v.shape) for k, v in SlowFastR50().state_dict().items()}
    assert ours == official


def test_spec_and_slow_pathway_indices():
    model = BACKBONES.build(dict(type="slowfast_r50_8x8"))
    spec = model.spec
    assert (spec.clip_len, spec.frame_interval, spec.feature_dim, spec.crop) == (32, 2, 2304, 224)
    assert slow_indices(32).tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    assert slow_indices(8).tolist() == [0, 7]


def test_caffe2_rule_reproduces_official_converter_map(caffe2_names):
    derived = {blob: SlowFastR50.caffe2_key(blob) for blob in caffe2_names}
    assert derived == caffe2_names
    for blob in ("model_iter", "lr", "res2_0_branch2a_w_momentum", "t_res3_1_branch2b_bn_s_momentum"):
        assert SlowFastR50.caffe2_key(blob) is None


@pytest.mark.slow
def test_parity_with_official_feature(parity_fixture, slowfast_state):
    case = parity_fixture["slowfast_r50_8x8"]
    model = SlowFastR50().eval()
    model.load_state_dict(official_tensors(slowfast_state), strict=True)
    s5_shapes = []
    model.s5.register_forward_hook(lambda mod, inp, out: s5_shapes.extend(list(m.shape) for m in out))
    with torch.no_grad():
        feature = model(recipe_input(case["seed0"]["seed"], 32))
    assert s5_shapes == case["seed0"]["s5_shapes"]
    assert feature.shape == (1, 2304)
    err = np.abs(feature[0].double().numpy() - np.asarray(case["seed0"]["feature"])).max()
    assert err <= 1e-4, f"max abs error {err:.2e}"


def test_spatial_grid_concatenates_both_pathways():
    model = SlowFastR50().eval()
    x = torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        grid = model(x, spatial_grid=2)
        pooled = model(x)
    assert grid.shape == (1, 2304, 2, 2) and pooled.shape == (1, 2304)
    torch.testing.assert_close(grid.mean(dim=(2, 3)), pooled, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(pooled).all()
    with pytest.raises(TadInputError, match="multiple of 4"):
        model(torch.zeros(1, 3, 6, 32, 32))
