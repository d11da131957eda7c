"""Options the extractor passes through: channels_last_3d gives the same numbers, bf16 autocast stays close."""
from __future__ import annotations

import pytest
import torch

from tad.features.registry import BACKBONES

from parity_recipe import official_tensors


@pytest.fixture(scope="module")
def loaded_models(tada_state, slowfast_state):
    tada = BACKBONES.build(dict(type="tada2d_r50")).eval()
    tada.load_state_dict(official_tensors(tada_state, prefix_strip="backbone."), strict=True)
    slowfast = BACKBONES.build(dict(type="slowfast_r50_8x8")).eval()
    slowfast.load_state_dict(official_tensors(slowfast_state), strict=True)
    return {"tada2d_r50": tada, "slowfast_r50_8x8": slowfast}


@pytest.mark.parametrize("name, frames", [("tada2d_r50", 3), ("slowfast_r50_8x8", 8)])
def test_channels_last_and_bfloat16(loaded_models, name, frames):
    model = loaded_models[name]
    x = torch.randn(2, 3, frames, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        ref = model(x)
        model.to(memory_format=torch.channels_last_3d)
        try:
            channels_last = model(x.contiguous(memory_format=torch.channels_last_3d))
        finally:
            model.to(memory_format=torch.contiguous_format)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    torch.testing.assert_close(channels_last, ref, atol=1e-4, rtol=1e-4)
    assert low.dtype in (torch.bfloat16, torch.float32) and torch.isfinite(low.float()).all()
    rel = (low.float() - ref).norm() / ref.norm()
    assert rel < 0.05, f"bf16 relative error {rel:.3f}"
