"""Small layers shared by the ResNet-style backbones."""
from __future__ import annotations

import torch
from torch import nn


class PointwiseConv3d(nn.Conv3d):
    """A 1x1x1 Conv3d (same parameters and state_dict keys) computed as one batched GEMM
    ``W (C_out, C_in) @ x (B, C_in, T*H*W)``.

    On CPU, PyTorch sends 1x1x1 Conv3d calls either to the slow reference kernel
    (``slow_conv3d_forward``, small batches) or to oneDNN, which measured 1-3.5x slower
    than the GEMM here (see bench/backbone_speed.py). Channels-last or non-1x1x1 calls
    fall back to Conv3d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size != (1, 1, 1) or self.groups != 1 or self.padding != (0, 0, 0) \
                or x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous():
            return super().forward(x)
        if self.stride != (1, 1, 1):
            st, sh, sw = self.stride
            x = x[:, :, ::st, ::sh, ::sw]
        b, c, t, h, w = x.shape
        out = torch.matmul(self.weight.view(self.out_channels, c), x.reshape(b, c, t * h * w))  # (B, C_out, THW)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1).to(out.dtype)
        return out.view(b, -1, t, h, w)
