"""PointwiseConv3d: the GEMM form equals Conv3d for every stride/bias/layout/dtype it meets."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from tad.features.backbones._layers import PointwiseConv3d, conv_bn


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


def _random_bn(channels: int, seed: int) -> torch.nn.BatchNorm3d:
    gen = torch.Generator().manual_seed(seed)
    bn = torch.nn.BatchNorm3d(channels).eval()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=gen)
        bn.bias.normal_(0, 0.1, generator=gen)
        bn.running_mean.normal_(0, 0.1, generator=gen)
        bn.running_var.uniform_(0.5, 1.5, generator=gen)
    return bn


@pytest.mark.parametrize("conv_cls, kernel", [(PointwiseConv3d, 1), (torch.nn.Conv3d, (3, 1, 1))])
def test_conv_bn_folds_at_inference_and_never_goes_stale(conv_cls, kernel):
    conv = conv_cls(6, 10, kernel, padding=0 if kernel == 1 else (1, 0, 0), bias=True)
    bn = _random_bn(10, 1)
    x = torch.randn(2, 6, 4, 5, 5, generator=torch.Generator().manual_seed(2))
    unfolded = bn(conv(x)).detach()  # grad enabled: the plain path
    with torch.no_grad():
        folded = conv_bn(conv, bn, x)
        assert "_folded_bn" in conv.__dict__
        torch.testing.assert_close(folded, unfolded, atol=1e-5, rtol=1e-5)
        bn.load_state_dict(_random_bn(10, 9).state_dict())  # new weights: the cache must not be reused
        torch.testing.assert_close(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-5, rtol=1e-5)
        conv.weight.mul_(2)
        torch.testing.assert_close(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-5, rtol=1e-5)
    bn.train()
    assert torch.equal(conv_bn(conv, bn, x), bn(conv(x)))  # training: plain BN with batch statistics
