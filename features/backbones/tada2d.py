"""TAda2D-R50 (Huang et al., ICLR 2022) with the official state_dict key names.

Our parameters are named like the official ``model_state`` minus its ``backbone.``
prefix and ``head.`` keys (``load_backbone_checkpoint`` strips and drops those), so
an official checkpoint loads with ``strict=True``.

TAdaConv calibrates a 2D conv weight per frame with ``alpha_t`` (one factor per
input channel): ``conv2d(x_t, W * alpha_t) == conv2d(x_t * alpha_t, W)``. The
official code runs it as one grouped conv2d with one group per frame (a B*T-fold
weight copy); the default ``tada_impl='fast'`` scales the input instead and runs one
ordinary conv2d over all frames. ``tada_impl='grouped'`` keeps the official form
for the benchmark and the parity test.

Architecture facts (stem without max-pool, stride 2 on the first block of every
stage, the avg-pool BN branch reading the pre-BN TAdaConv output, eps 1e-5) follow
the official code, see ``shared/fixtures/backbones/README.md``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones._init_weights import init_resnet_weights
from tad.features.backbones._layers import PointwiseConv3d, conv_bn
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.registry import BACKBONES

BN_EPS = 1e-5
TADA_IMPLS = ("fast", "grouped")

#: Sampling presets: frames per clip and the step between them at 30 fps.
TADA2D_PRESETS = {"8x8": (8, 8), "16x5": (16, 5)}


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS)


class RouteFunc(nn.Module):
    """Calibration weights alpha (B, C, T, 1, 1) from frame and clip descriptors (``b_rf``)."""

    def __init__(self, channels: int, ratio: int = 4, kernels: tuple[int, int] = (3, 3)):
        super().__init__()
        reduced = channels // ratio
        self.g = PointwiseConv3d(channels, channels, 1)
        self.a = nn.Conv3d(channels, reduced, (kernels[0], 1, 1), padding=(kernels[0] // 2, 0, 0))
        self.bn = _bn(reduced)
        self.b = nn.Conv3d(reduced, channels, (kernels[1], 1, 1), padding=(kernels[1] // 2, 0, 0), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frame_desc = x.mean(dim=(3, 4), keepdim=True)  # (B, C, T, 1, 1)
        clip_desc = x.mean(dim=(2, 3, 4), keepdim=True)  # (B, C, 1, 1, 1)
        y = F.relu(self.bn(self.a(frame_desc + self.g(clip_desc))))  # (B, C/r, T, 1, 1)
        return self.b(y) + 1.0  # (B, C, T, 1, 1)


class TemporalAvgPool3(nn.Module):
    """AvgPool3d((3, 1, 1), stride 1, pad (1, 0, 0), count_include_pad=True), valid for any T >= 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (0, 0, 0, 0, 1, 1))  # zero frame at both ends: (B, C, T + 2, H, W)
        return F.avg_pool3d(padded, (3, 1, 1), stride=1)


class TAdaConv2d(nn.Module):
    """Temporally adaptive 2D conv; ``weight`` keeps the official 6-D shape (1, 1, C_out, C_in, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, impl: str = "fast"):
        super().__init__()
        if impl not in TADA_IMPLS:
            raise ValueError(f"tada_impl must be one of {TADA_IMPLS}, got {impl!r}")
        self.impl = impl
        self.stride = stride
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(1, 1, out_channels, in_channels, kernel_size, kernel_size))

    def forward(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T, H, W), alpha (B, C_in, T, 1, 1) -> (B, C_out, T, H', W')."""
        b, c_in, t, h, w = x.shape
        weight = self.weight[0, 0]  # (C_out, C_in, kh, kw)
        if self.impl == "fast":
            # scale and move to frame-major layout in one pass: (B, T, C_in, H, W)
            frames = torch.empty((b, t, c_in, h, w), dtype=torch.result_type(x, alpha), device=x.device)
            torch.mul(x.transpose(1, 2), alpha.transpose(1, 2), out=frames)
            out = F.conv2d(frames.view(b * t, c_in, h, w), weight.to(frames.dtype), stride=self.stride,
                           padding=self.padding)  # (B*T, C_out, H', W')
        else:  # official: one group per frame, the weight scaled per frame
            frames = x.transpose(1, 2).reshape(1, b * t * c_in, h, w)  # (1, B*T*C_in, H, W)
            scale = alpha.transpose(1, 2).reshape(b * t, 1, c_in, 1, 1)  # (B*T, 1, C_in, 1, 1)
            per_frame = (scale * weight.unsqueeze(0)).reshape(-1, c_in, *weight.shape[-2:])  # (B*T*C_out, C_in, kh, kw)
            out = F.conv2d(frames, per_frame, stride=self.stride, padding=self.padding, groups=b * t)
        out = out.reshape(b, t, -1, out.shape[-2], out.shape[-1])  # (B, T, C_out, H', W')
        return out.transpose(1, 2)  # (B, C_out, T, H', W')


class TAdaBottleneckBranch(nn.Module):
    """1x1x1 conv -> TAdaConv 3x3 (+ temporal avg-pool BN branch) -> 1x1x1 conv (``conv_branch``)."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, impl: str):
        super().__init__()
        self.a = PointwiseConv3d(dim_in, dim_inner, 1, bias=False)
        self.a_bn = _bn(dim_inner)
        self.b = TAdaConv2d(dim_inner, dim_inner, 3, stride=stride, padding=1, impl=impl)
        self.b_rf = RouteFunc(dim_inner)
        self.b_bn = _bn(dim_inner)
        self.b_avgpool = TemporalAvgPool3()
        self.b_avgpool_bn = _bn(dim_inner)
        self.c = PointwiseConv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(conv_bn(self.a, self.a_bn, x))
        y = self.b(x, self.b_rf(x))  # pre-BN TAdaConv output feeds both BNs
        x = F.relu(self.b_bn(y) + self.b_avgpool_bn(self.b_avgpool(y)))
        return conv_bn(self.c, self.c_bn, x)


class TAdaResBlock(nn.Module):
    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, impl: str):
        super().__init__()
        if dim_in != dim_out or stride != 1:
            self.short_cut = PointwiseConv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False)
            self.short_cut_bn = _bn(dim_out)
        else:
            self.short_cut = None
        self.conv_branch = TAdaBottleneckBranch(dim_in, dim_inner, dim_out, stride, impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.short_cut is None else conv_bn(self.short_cut, self.short_cut_bn, x)
        return F.relu(shortcut + self.conv_branch(x))


class TAdaStage(nn.Module):
    """Blocks named ``res_1`` .. ``res_n`` as in the official code."""

    def __init__(self, num_blocks: int, dim_in: int, dim_inner: int, dim_out: int, stride: int, impl: str):
        super().__init__()
        self.num_blocks = num_blocks
        for i in range(num_blocks):
            block = TAdaResBlock(dim_in if i == 0 else dim_out, dim_inner, dim_out, stride if i == 0 else 1, impl)
            self.add_module(f"res_{i + 1}", block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_blocks):
            x = getattr(self, f"res_{i + 1}")(x)
        return x


class TAdaStem(nn.Module):
    """conv 1x7x7 stride (1, 2, 2) -> BN -> ReLU; no max-pool (``conv1``)."""

    def __init__(self, dim_out: int = 64):
        super().__init__()
        self.a = nn.Conv3d(3, dim_out, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False)
        self.a_bn = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(conv_bn(self.a, self.a_bn, x))


@BACKBONES.register_module(name="tada2d_r50")
class TAda2DR50(Backbone):
    """TAda2D ResNet-50 feature extractor: (B, 3, T, H, W) -> (B, 2048).

    ``preset`` picks the sampling ('8x8': 8 frames every 8, '16x5': 16 every 5, both
    at 30 fps); the weights are the same. ``crop`` defaults to 224 for speed; the
    official test views use 256 (pass ``crop=256``). ``tada_impl`` picks the TAdaConv
    kernel ('fast' or the official 'grouped'), both give the same numbers.
    """

    registry_name = "tada2d_r50"
    card = BackboneCard(
        paper="TAda! Temporally-Adaptive Convolutions (Huang et al., ICLR 2022)",
        input="8 x 8 @ 224^2 (preset 16 x 5; official test crop 256)",
        norm="RGB [0, 1], mean 0.45 / std 0.225",
        feature_dim=2048,
        gflops=66.0,  # 8 x 224^2; 86.3 at the official 256^2 test crop
        checkpoints=("tada2d_r50_8x8.pyth", "tada2d_r50_16x5.pyth"),
        source="alibaba-mmai-research/TAdaConv MODEL_ZOO.md, Google Drive/Baidu links (file named as saved)",
    )
    checkpoint_ignore_prefixes = ("head.",)

    def __init__(self, preset: str = "8x8", tada_impl: str = "fast", crop: int = 224,
                 short_side: int = 256, init_seed: int = 0):
        super().__init__()
        if preset not in TADA2D_PRESETS:
            raise TadInputError("tada2d_r50", f"unknown preset {preset!r}; choose one of {sorted(TADA2D_PRESETS)}")
        if tada_impl not in TADA_IMPLS:
            raise TadInputError("tada2d_r50", f"unknown tada_impl {tada_impl!r}; choose one of {list(TADA_IMPLS)}")
        clip_len, frame_interval = TADA2D_PRESETS[preset]
        self.spec = BackboneSpec(
            clip_len=clip_len, frame_interval=frame_interval, feature_dim=2048, short_side=short_side, crop=crop,
            extra=dict(preset=preset, tada_impl=tada_impl, official_test_crop=256),
        )
        self.conv1 = TAdaStem(64)
        widths = (64, 128, 256, 512)
        depths = (3, 4, 6, 3)
        dim_in = 64
        for i, (width, depth) in enumerate(zip(widths, depths)):
            self.add_module(f"conv{i + 2}", TAdaStage(depth, dim_in, width, width * 4, stride=2, impl=tada_impl))
            dim_in = width * 4
        init_resnet_weights(self, init_seed, zero_bn_suffix="c_bn")
        for module in self.modules():
            if isinstance(module, RouteFunc):  # alpha starts at 1, as in the official init
                nn.init.zeros_(module.b.weight)

    def set_tada_impl(self, impl: str) -> None:
        """Switch every TAdaConv between 'fast' and the official 'grouped' form in place."""
        if impl not in TADA_IMPLS:
            raise ValueError(f"tada_impl must be one of {TADA_IMPLS}, got {impl!r}")
        for module in self.modules():
            if isinstance(module, TAdaConv2d):
                module.impl = impl

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        x = self.conv1(clips)  # (B, 64, T, H/2, W/2)
        for i in range(2, 6):
            x = getattr(self, f"conv{i}")(x)
        return [x]  # (B, 2048, T, H/32, W/32)
