"""PointwiseConv3d: the GEMM form equals Conv3d for every stride/bias/layout/dtype it meets."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from tad.features.backbones._layers import PointwiseConv3d


@pytest.mark.parametrize("stride", [(1, 1, 1), (1, 2, 2)])
@pytest.mark.parametrize("bias", [False, True])
def test_pointwise_matches_conv3d(stride, bias):
    gen = torch.Generator().manual_seed(0)
    conv = PointwiseConv3d(8, 12, 1, stride=stride, bias=bias)
    x = torch.randn(2, 8, 3, 9, 9, generator=gen)
    ref = F.conv3d(x, conv.weight, conv.bias, stride=stride)
    with torch.no_grad():
        out = conv(x)
        out_cl = conv(x.contiguous(memory_format=torch.channels_last_3d))
        out_strided = conv(x.transpose(3, 4).contiguous().transpose(3, 4))  # non-contiguous input
    assert out.shape == ref.shape == (2, 12, 3, 9 // stride[1] + 1 if stride[1] == 2 else 9, ref.shape[-1])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_cl, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_strided, ref, atol=1e-5, rtol=1e-5)
    assert conv.state_dict().keys() == ({"weight", "bias"} if bias else {"weight"})
