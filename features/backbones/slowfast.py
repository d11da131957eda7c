"""SlowFast-R50 8x8 (Feichtenhofer et al., ICCV 2019) with the official state_dict key names.

A clip is the fast pathway: 32 frames taken every 2 frames at 30 fps, (B, 3, 32, H, W);
the slow pathway is ``fast[:, :, linspace(0, 31, 8).long()]`` as in the official
``PackPathway``. The feature is the global average of the slow s5 map (2048) and of
the fast s5 map (256), concatenated slow first (2304); at 224x224 this equals the
official head's fixed-size pooling.

Official ``.pyth`` checkpoints load with ``strict=True`` (head keys dropped); the
Caffe2 ``.pkl`` model-zoo files are renamed with ``caffe2_key``, a rule that
reproduces the official converter's mapping (checked against the fixture in tests).
"""
from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones._init_weights import init_resnet_weights
from tad.features.backbones._layers import PointwiseConv3d, ProjectedResBlock, conv_bn
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.registry import BACKBONES

BN_EPS = 1e-5
ALPHA = 4  # frame-rate ratio fast / slow
BETA_INV = 8  # channel ratio slow / fast
FUSION_CONV_CHANNEL_RATIO = 2
FUSION_KERNEL = 7
DEPTHS = (3, 4, 6, 3)
# Temporal kernel of conv ``a`` per stage s2..s5: slow pathway, fast pathway.
TEMPORAL_KERNELS = ((1, 3), (1, 3), (3, 3), (3, 3))
SPATIAL_STRIDES = (1, 2, 2, 2)


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS)


class Stem(nn.Module):
    """conv t x 7 x 7 stride (1, 2, 2) -> BN -> ReLU -> max-pool 1x3x3 stride (1, 2, 2)."""

    def __init__(self, dim_in: int, dim_out: int, temporal_kernel: int):
        super().__init__()
        self.conv = nn.Conv3d(dim_in, dim_out, (temporal_kernel, 7, 7), stride=(1, 2, 2),
                              padding=(temporal_kernel // 2, 3, 3), bias=False)
        self.bn = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(conv_bn(self.conv, self.bn, x))
        return F.max_pool3d(x, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))


class FuseFastToSlow(nn.Module):
    """Time-strided conv of the fast map, concatenated after the slow channels (``sN_fuse``)."""

    def __init__(self, fast_channels: int):
        super().__init__()
        self.conv_f2s = nn.Conv3d(fast_channels, fast_channels * FUSION_CONV_CHANNEL_RATIO, (FUSION_KERNEL, 1, 1),
                                  stride=(ALPHA, 1, 1), padding=(FUSION_KERNEL // 2, 0, 0), bias=False)
        self.bn = _bn(fast_channels * FUSION_CONV_CHANNEL_RATIO)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused = F.relu(conv_bn(self.conv_f2s, self.bn, fast))  # (B, 2 C_fast, T_slow, h, w)
        return torch.cat([slow, fused], dim=1), fast


class BottleneckTransform(nn.Module):
    """conv ``a`` t x 1 x 1 -> conv ``b`` 1 x 3 x 3 (spatial stride) -> conv ``c`` 1x1x1 (``branch2``)."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, temporal_kernel: int, stride: int):
        super().__init__()
        self.a = PointwiseConv3d(dim_in, dim_inner, (temporal_kernel, 1, 1), padding=(temporal_kernel // 2, 0, 0),
                           bias=False)
        self.a_bn = _bn(dim_inner)
        self.b = nn.Conv3d(dim_inner, dim_inner, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                           bias=False)
        self.b_bn = _bn(dim_inner)
        self.c = PointwiseConv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(conv_bn(self.a, self.a_bn, x))
        x = F.relu(conv_bn(self.b, self.b_bn, x))
        return conv_bn(self.c, self.c_bn, x)


class ResBlock(ProjectedResBlock):
    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, temporal_kernel: int, stride: int):
        super().__init__(dim_in, dim_out, stride,
                         BottleneckTransform(dim_in, dim_inner, dim_out, temporal_kernel, stride), BN_EPS)


class ResStage(nn.Module):
    """Both pathways of one stage; blocks named ``pathway{p}_res{i}`` as in the official code."""

    def __init__(self, depth: int, dims_in: tuple[int, int], dims_inner: tuple[int, int],
                 dims_out: tuple[int, int], temporal_kernels: tuple[int, int], stride: int):
        super().__init__()
        self.depth = depth
        for p in range(2):
            for i in range(depth):
                block = ResBlock(dims_in[p] if i == 0 else dims_out[p], dims_inner[p], dims_out[p],
                                 temporal_kernels[p], stride if i == 0 else 1)
                self.add_module(f"pathway{p}_res{i}", block)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for i in range(self.depth):
            slow = getattr(self, f"pathway0_res{i}")(slow)
            fast = getattr(self, f"pathway1_res{i}")(fast)
        return slow, fast


class SlowFastStem(nn.Module):
    def __init__(self):
        super().__init__()
        self.pathway0_stem = Stem(3, 64, 1)
        self.pathway1_stem = Stem(3, 64 // BETA_INV, 5)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pathway0_stem(slow), self.pathway1_stem(fast)


def slow_indices(num_fast: int, alpha: int = ALPHA) -> torch.Tensor:
    """Fast-frame indices of the slow pathway: ``linspace(0, T - 1, T // alpha).long()``."""
    return torch.linspace(0, num_fast - 1, max(num_fast // alpha, 1)).long()


_CAFFE2_SPECIAL = {
    "conv1_w": "s1.{p}_stem.conv.weight",
    "pool1_subsample_w": "s1_fuse.conv_f2s.weight",
    "pred_w": "head.projection.weight",
    "pred_b": "head.projection.bias",
}
_CAFFE2_BN = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}
_CAFFE2_BLOCK = re.compile(r"^res(\d)_(\d+)_branch(1|2[abc])(_bn)?(?:_(w|s|b|rm|riv))$")
_CAFFE2_FUSE = re.compile(r"^res(\d)_\d+_branch2c_bn_subsample(_bn)?_(w|s|b|rm|riv)$")


@BACKBONES.register_module(name="slowfast_r50_8x8")
class SlowFastR50(Backbone):
    """SlowFast-R50 8x8 feature extractor: fast clip (B, 3, 32, H, W) -> (B, 2304)."""

    registry_name = "slowfast_r50_8x8"
    card = BackboneCard(
        paper="SlowFast Networks (Feichtenhofer et al., ICCV 2019)",
        input="32 x 2 @ 224^2 (slow: 8 of the 32)",
        norm="RGB [0, 1], mean 0.45 / std 0.225",
        feature_dim=2304,
        gflops=100.6,  # 32 x 224^2
        checkpoints=("SLOWFAST_8x8_R50.pkl", "SLOWFAST_8x8_R50.pyth"),
        source="facebookresearch/SlowFast MODEL_ZOO.md (dl.fbaipublicfiles.com/pyslowfast)",
    )
    checkpoint_ignore_prefixes = ("head.",)

    def __init__(self, crop: int = 224, short_side: int = 256, init_seed: int = 0):
        super().__init__()
        self.spec = BackboneSpec(
            clip_len=32, frame_interval=2, feature_dim=2048 + 256, short_side=short_side, crop=crop,
            extra=dict(alpha=ALPHA, slow_frames=8, pathways="slow=fast[linspace(0, T-1, T/alpha)]"),
        )
        self.s1 = SlowFastStem()
        self.s1_fuse = FuseFastToSlow(64 // BETA_INV)
        slow_in, fast_in = 64, 64 // BETA_INV
        for stage, (depth, kernels, stride) in enumerate(zip(DEPTHS, TEMPORAL_KERNELS, SPATIAL_STRIDES)):
            width = 64 * 2 ** stage
            fast_width = width // BETA_INV
            dims_in = (slow_in + fast_in * FUSION_CONV_CHANNEL_RATIO, fast_in)
            dims_out = (width * 4, fast_width * 4)
            self.add_module(f"s{stage + 2}", ResStage(depth, dims_in, (width, fast_width), dims_out, kernels, stride))
            if stage < 3:
                self.add_module(f"s{stage + 2}_fuse", FuseFastToSlow(fast_width * 4))
            slow_in, fast_in = dims_out
        init_resnet_weights(self, init_seed, zero_bn_suffix="c_bn")

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        if clips.shape[2] % ALPHA:
            raise TadInputError(self.registry_name, f"clip_len must be a multiple of {ALPHA} (slow pathway = every "
                                                    f"{ALPHA}th fast frame), got {clips.shape[2]}")
        fast = clips  # (B, 3, T_fast, H, W)
        slow = clips.index_select(2, slow_indices(clips.shape[2]).to(clips.device))  # (B, 3, T_fast / 4, H, W)
        slow, fast = self.s1(slow, fast)
        slow, fast = self.s1_fuse(slow, fast)
        for stage in range(2, 6):
            slow, fast = getattr(self, f"s{stage}")(slow, fast)
            if stage < 5:
                slow, fast = getattr(self, f"s{stage}_fuse")(slow, fast)
        return [slow, fast]  # (B, 2048, T/4, H/32, W/32), (B, 256, T, H/32, W/32)

    @staticmethod
    def caffe2_key(blob: str) -> str | None:
        """Model key of a Caffe2 blob of the released SlowFast ``.pkl`` files (None: not a weight).

        ``t_`` marks the fast pathway (pathway1); BN blobs ``_s/_b/_rm/_riv`` are
        weight/bias/running_mean/running_var; ``resS_I_branch2c_bn_subsample*`` is the
        fusion after stage S; ``pool1_subsample*`` the fusion after the stems.
        """
        pathway = "pathway1" if blob.startswith("t_") else "pathway0"
        name = blob[2:] if blob.startswith("t_") else blob
        if name in _CAFFE2_SPECIAL:
            return _CAFFE2_SPECIAL[name].format(p=pathway)
        if name.startswith("res_conv1_bn_"):
            suffix = _CAFFE2_BN.get(name[len("res_conv1_bn_"):])
            return f"s1.{pathway}_stem.bn.{suffix}" if suffix else None
        if name.startswith("pool1_subsample_bn_"):
            suffix = _CAFFE2_BN.get(name[len("pool1_subsample_bn_"):])
            return f"s1_fuse.bn.{suffix}" if suffix else None
        fuse = _CAFFE2_FUSE.match(name)
        if fuse:
            stage, is_bn, kind = fuse.groups()
            if is_bn:
                return f"s{stage}_fuse.bn.{_CAFFE2_BN[kind]}" if kind in _CAFFE2_BN else None
            return f"s{stage}_fuse.conv_f2s.weight" if kind == "w" else None
        block = _CAFFE2_BLOCK.match(name)
        if not block:
            return None
        stage, index, branch, is_bn, kind = block.groups()
        prefix = f"s{stage}.{pathway}_res{index}."
        conv = "branch1" if branch == "1" else f"branch2.{branch[1]}"
        if is_bn:
            return prefix + f"{conv}_bn.{_CAFFE2_BN[kind]}" if kind in _CAFFE2_BN else None
        return prefix + f"{conv}.weight" if kind == "w" else None
