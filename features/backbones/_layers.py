"""Small layers shared by the ResNet-style backbones."""
from __future__ import annotations

import torch
from torch import nn


class PointwiseConv3d(nn.Conv3d):
    """A 1x1x1 Conv3d (same parameters and state_dict keys) computed as one batched GEMM
    ``W (C_out, C_in) @ x (B, C_in, T*H*W)``.

    On CPU, PyTorch sends 1x1x1 Conv3d calls either to the slow reference kernel
    (``slow_conv3d_forward``, small batches) or to oneDNN, which measured 1-3.5x slower
    than the GEMM here. Channels-last or non-1x1x1 calls fall back to Conv3d.
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.kernel_size != (1, 1, 1) or self.groups != 1 or self.padding != (0, 0, 0) \
                or x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous():
            return super()._conv_forward(x, weight, bias)
        if self.stride != (1, 1, 1):
            st, sh, sw = self.stride
            x = x[:, :, ::st, ::sh, ::sw]
        b, c, t, h, w = x.shape
        out = torch.matmul(weight.reshape(self.out_channels, c), x.reshape(b, c, t * h * w))  # (B, C_out, THW)
        if bias is not None:
            out = out + bias.view(1, -1, 1).to(out.dtype)
        return out.view(b, -1, t, h, w)


def _tensor_key(t: torch.Tensor | None) -> tuple:
    return () if t is None else (t._version, t.data_ptr(), t.dtype, t.device)


def conv_bn(conv: nn.Conv3d, bn: nn.BatchNorm3d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))``. At inference (BN in eval mode and autograd off) the BN is folded
    into the conv weight and bias, saving one pass over the activation; the folded
    tensors are cached on the conv and rebuilt whenever any source tensor changes
    (``load_state_dict``, ``.to()``), so the cache can never be stale."""
    if bn.training or not bn.track_running_stats or torch.is_grad_enabled() or torch.compiler.is_compiling():
        return bn(conv(x))  # torch.compile fuses BN itself; a Python-side cache would only cause recompiles
    sources = (conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    key = tuple(_tensor_key(t) for t in sources) + (bn.eps,)
    cached = conv.__dict__.get("_folded_bn")
    if cached is None or cached[0] != key:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
        shift = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        weight = conv.weight * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
        cached = (key, weight, shift)
        conv.__dict__["_folded_bn"] = cached
    return conv._conv_forward(x, cached[1], cached[2])


class ProjectedResBlock(nn.Module):
    """The residual block of SlowFast-family code (SlowFast, X3D): ``relu(shortcut + branch2(x))``.

    The shortcut is ``branch1`` (a 1x1x1 conv with spatial ``stride``, no bias) + ``branch1_bn``
    when the shape changes, else the identity; attribute names are the official checkpoint keys.

    Args:
        dim_in: input channels.
        dim_out: output channels.
        stride: spatial stride of the block (its ``branch2`` applies the same one).
        branch2: the residual transform, (B, dim_in, T, H, W) -> (B, dim_out, T, H/stride, W/stride).
        bn_eps: BatchNorm epsilon of ``branch1_bn``.
    """

    def __init__(self, dim_in: int, dim_out: int, stride: int, branch2: nn.Module, bn_eps: float):
        super().__init__()
        if dim_in != dim_out or stride != 1:
            self.branch1 = PointwiseConv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False)
            self.branch1_bn = nn.BatchNorm3d(dim_out, eps=bn_eps)
        else:
            self.branch1 = None
        self.branch2 = branch2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.branch1 is None else conv_bn(self.branch1, self.branch1_bn, x)
        return torch.relu(shortcut + self.branch2(x))
