"""The ResNet-50 trunk shared by the 2D-CNN temporal-module backbones (GSF, TEA, RSA).

A clip (B, 3, T, H, W) runs frame by frame as one (B*T, C, H, W) batch through the
torchvision ResNet layout: ``conv1`` 7x7/2 + ``bn1`` + ReLU + 3x3/2 max-pool, then
``layer1`` ... ``layer4`` of (3, 4, 6, 3) blocks with planes (64, 128, 256, 512), the spatial
stride on the first block of layers 2-4. Each backbone supplies only its block (the
temporal module lives there): ``make_block(dim_in, planes, stride, index)`` returns a module
called as ``block(x, frames)`` on (B*T, C, H, W). The map returned is (B, C, T, H/32, W/32).

Checkpoints of the TSN-style code these models were released with hold
``module.base_model.*`` plus a classifier (``new_fc``/``fc``); ``convert_checkpoint_keys``
strips ``base_model.`` and drops the classifier, the rest is the strict loader's job.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones._layers import conv_bn
from tad.features.backbones.base import Backbone
from tad.features.backbones.tsm import _as_map, _drop_prefixes, _frames_first

STAGE_DEPTHS = (3, 4, 6, 3)
STAGE_PLANES = (64, 128, 256, 512)


class FrameConv3d(nn.Conv3d):
    """A Conv3d with a (1, k, k) kernel (5-D weight, official keys) applied frame by frame:
    on a (B*T, C, H, W) input it is ``conv2d`` with the weight's unit time axis dropped."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if x.dim() == 5:
            return super()._conv_forward(x, weight, bias)
        return F.conv2d(x, weight.squeeze(2), bias, self.stride[1:], self.padding[1:], self.dilation[1:], self.groups)


class ResNet2DTrunk(Backbone):
    """Stem + four stages of backbone-specific blocks; see the module docstring.

    Args:
        make_block: ``(dim_in, planes, stride, index_in_stage) -> block``; blocks expand planes by 4.
        stem_conv: the stem convolution (default a 7x7/2 ``nn.Conv2d`` 3 -> 64 without bias).
        init_seed: seed of the random init used without a checkpoint.
        zero_bn_suffix: BNs whose name ends with it start at zero (last BN of each residual branch).
    """

    checkpoint_ignore_prefixes = ("new_fc.", "base_model.fc.", "base_model.fc1.", "fc.", "fc1.")

    def _build_trunk(self, make_block: Callable[[int, int, int, int], nn.Module], stem_conv: nn.Module | None = None,
                     init_seed: int = 0, zero_bn_suffix: str | None = "bn3") -> None:
        self.conv1 = stem_conv if stem_conv is not None else nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        dim_in = 64
        for stage, (depth, planes) in enumerate(zip(STAGE_DEPTHS, STAGE_PLANES)):
            stride = 1 if stage == 0 else 2
            blocks = [make_block(dim_in if i == 0 else planes * 4, planes, stride if i == 0 else 1, i)
                      for i in range(depth)]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
            dim_in = planes * 4
        init_temporal_resnet(self, init_seed, zero_bn_suffix)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        batch, frames = clips.shape[0], clips.shape[2]
        x = F.relu(conv_bn(self.conv1, self.bn1, _frames_first(clips)))  # (B*T, 64, H/2, W/2)
        x = F.max_pool2d(x, 3, stride=2, padding=1)  # (B*T, 64, H/4, W/4)
        for stage in range(1, 5):
            for block in getattr(self, f"layer{stage}"):
                x = block(x, frames)  # (B*T, C_s, H/2^(s+1), W/2^(s+1))
        return [_as_map(x, batch)]  # (B, 2048, T, H/32, W/32)

    def convert_checkpoint_keys(self, state: dict[str, object]) -> dict[str, object]:
        """``base_model.*`` -> own keys; the classifier (``new_fc``, ``fc``) dropped."""
        return _drop_prefixes(state, "base_model.", self.checkpoint_ignore_prefixes)


def downsample(dim_in: int, dim_out: int, stride: int, conv: type[nn.Conv2d] | type[nn.Conv3d] = nn.Conv2d) \
        -> nn.Sequential | None:
    """The projection shortcut (1x1 conv with ``stride`` + BN, keys ``downsample.0/1``) when the shape changes."""
    if stride == 1 and dim_in == dim_out:
        return None
    if conv is nn.Conv2d:
        return nn.Sequential(nn.Conv2d(dim_in, dim_out, 1, stride=stride, bias=False), nn.BatchNorm2d(dim_out))
    return nn.Sequential(FrameConv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False),
                         nn.BatchNorm2d(dim_out))


def shortcut(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` or its projection through ``block.downsample``."""
    proj = block.downsample
    return x if proj is None else conv_bn(proj[0], proj[1], x)


def init_temporal_resnet(model: nn.Module, seed: int, zero_bn_suffix: str | None) -> None:
    """Seeded Kaiming-normal (fan-out) weights for every conv, zero conv biases, unit BNs (zero for
    names ending ``zero_bn_suffix``); modules with a ``reset_temporal`` method then set their
    own official initial values (e.g. TEA's shift kernels, RSA's identity terms)."""
    gen = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            nn.init.constant_(module.weight, 0.0 if zero_bn_suffix and name.endswith(zero_bn_suffix) else 1.0)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.conv._ConvNd):
            fan_out = module.out_channels * math.prod(module.kernel_size) // module.groups
            with torch.no_grad():
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=gen)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for module in model.modules():
        reset = getattr(module, "reset_temporal", None)
        if reset is not None:
            reset(gen)
