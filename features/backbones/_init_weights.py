"""Deterministic random init shared by the ResNet-style backbones (``--random-init`` runs)."""
from __future__ import annotations

import math

import torch
from torch import nn


def init_resnet_weights(model: nn.Module, seed: int, zero_bn_suffix: str | None = None) -> None:
    """Kaiming-normal (fan-out) conv weights drawn from a generator seeded with ``seed``,
    zero conv biases, unit BNs; BNs whose name ends with ``zero_bn_suffix`` (the last BN
    of each residual branch) start at zero like the official recipes. The same seed gives
    the same weights on every machine, so random-init feature stores are comparable.

    Conv weights are 5-D (C_out, C_in, t, h, w) or the TAdaConv 6-D (1, 1, C_out, C_in, h, w).
    """
    gen = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if zero_bn_suffix and name.endswith(zero_bn_suffix):
                nn.init.zeros_(module.weight)
        elif isinstance(weight, nn.Parameter) and weight.dim() in (5, 6):
            out_channels = weight.shape[2] if weight.dim() == 6 else weight.shape[0]
            fan_out = out_channels * math.prod(weight.shape[-3:] if weight.dim() == 5 else weight.shape[-2:])
            with torch.no_grad():
                weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=gen)
            bias = getattr(module, "bias", None)
            if isinstance(bias, nn.Parameter):
                nn.init.zeros_(bias)
