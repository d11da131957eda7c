"""VoV3D-M and VoV3D-L (Lee et al., "Diverse Temporal Aggregation and Depthwise Spatiotemporal
Factorization for Efficient Video Classification", 2020) with youngwanLEE/VoV3D's key names.

Registered as ``vov3d_m`` / ``vov3d_l``. Clips (B, 3, T, H, W), normalised, map to the 2048-d
``lin_5`` vector of the official X3D-style head (``feature="lin5"``, default), or the pooled
``conv_5`` map (``feature="conv5"``: 320 / 384) or res5 map (``feature="s5"``: 160 / 192).

The spec is the official Kinetics-400 test view (``configs/Kinetics/vov3d/vov3d_{M,L}.yaml``):
16 frames every 5 at 30 fps, short side 256, centre crop 256 (``TEST_CROP_SIZE``), mean 0.45,
std 0.225. The official head pools with a fixed AvgPool3d sized for the 224 training crop; a
feature extractor pools globally, which equals it at 224.

Architecture (read from VoV3D ``vov3d/models/vov3d_model_builder.py`` / ``vov3d_helper.py`` at
commit df9cc7b, which build on SlowFast's ``resnet_helper``/``stem_helper``/``operators``, and
checked against them on seeded weights):
- stem (``s1.pathway0_stem``): 1x3x3 conv stride (1, 2, 2) to C/2 -> depthwise 5x1x1 conv -> BN -> ReLU
  (C = ``INNER_CH``: 40 for M, 48 for L);
- four stages of (1, 2, 3, 2) (M) or (1, 2, 5, 3) (L) residual blocks ``pathway0_res{i}``, width
  C/2, C, 2C, 4C (inner 2x that), spatial stride 2 in each stage's first block; the shortcut is a
  strided 1x1x1 conv + BN where the shape changes; ``relu(shortcut + branch2(x))``;
- ``branch2`` is a T-OSA module: five D(2+1)D layers in a chain (``layers.{j}``), each output kept;
  their concatenation (after the block input when the stride is 1) -> 1x1x1 conv ``c`` -> ``c_bn``;
- a D(2+1)D layer: 1x1x1 conv to the inner width + BN + ReLU (``a.0``/``a.1``) -> depthwise 1x3x3
  (spatial stride) ``b1`` -> depthwise 3x1x1 ``b2`` -> ``b_bn`` -> SE (layers 0, 2, 4; squeeze to
  round8(C_inner / 16), ReLU, sigmoid) -> Swish -> 1x1x1 conv to half the inner width + BN
  (``c.0``/``c.1``) -> + input when the shapes agree (not on a strided layer) -> ReLU;
- head: ``conv_5`` 1x1x1 to 8C + BN + ReLU, average, ``lin_5`` 1x1x1 to 2048 + ReLU
  (``head.projection`` is the classifier, ignored). Every BN has eps 1e-5.

Checkpoints: the released ``vov3d_{M,L}_k400_weight.pth`` / ``vov3d_{M,L}_k400.pth`` (SlowFast
``{"model_state": ...}`` files, or a bare state dict) load strictly. The Something-Something
releases (``vov3d_*_ssv{1,2}.pth``) are the same network and load too, but their pre-processing
is not this spec (pass their frames / crop yourself).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones._init_weights import init_resnet_weights
from tad.features.backbones._layers import PointwiseConv3d, ProjectedResBlock, conv_bn
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.backbones.x3d import DIM_C5, SqueezeExcite, X3DHead, X3DStem
from tad.features.registry import BACKBONES

BN_EPS = 1e-5
NUM_CONV = 5  # D(2+1)D layers per T-OSA module (``VOV3D.NUM_CONV``)
INNER_MULTIPLIER = (1, 2, 4, 8)
OUT_MULTIPLIER = (0.5, 1.0, 2.0, 4.0)
FEATURES = ("lin5", "conv5", "s5")

#: size -> (INNER_CH, blocks per stage, GFLOPs per 16 x 256^2 clip, checkpoints)
PRESETS = {
    "m": (40, (1, 2, 3, 2), 12.8, ("vov3d_M_k400_weight.pth", "vov3d_M_k400.pth")),
    "l": (48, (1, 2, 5, 3), 24.3, ("vov3d_L_k400_weight.pth", "vov3d_L_k400.pth")),
}


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS)


class D2Plus1D(nn.Module):
    """One depthwise-factorised D(2+1)D layer (keys ``a.0``, ``a.1``, ``b1``, ``b2``, ``b_bn``,
    ``se.fc1``/``se.fc2``, ``c.0``, ``c.1``): (B, C_in, T, H, W) -> (B, C_inner / 2, T, H / s, W / s)."""

    def __init__(self, dim_in: int, dim_inner: int, stride: int, use_se: bool):
        super().__init__()
        dim_out = dim_inner // 2
        self.residual = dim_in == dim_out and stride != 2
        self.a = nn.Sequential(PointwiseConv3d(dim_in, dim_inner, 1, bias=False), _bn(dim_inner))
        self.b1 = nn.Conv3d(dim_inner, dim_inner, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                            groups=dim_inner, bias=False)
        self.b2 = nn.Conv3d(dim_inner, dim_inner, (3, 1, 1), padding=(1, 0, 0), groups=dim_inner, bias=False)
        self.b_bn = _bn(dim_inner)
        self.se = SqueezeExcite(dim_inner) if use_se else None
        self.c = nn.Sequential(PointwiseConv3d(dim_inner, dim_out, 1, bias=False), _bn(dim_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(conv_bn(self.a[0], self.a[1], x))  # (B, C_inner, T, H, W)
        y = conv_bn(self.b2, self.b_bn, self.b1(y))  # (B, C_inner, T, H / s, W / s)
        if self.se is not None:
            y = self.se(y)
        y = conv_bn(self.c[0], self.c[1], F.silu(y))  # (B, C_inner / 2, T, H / s, W / s)
        return F.relu(x + y if self.residual else y)


class TOSA(nn.Module):
    """Temporal one-shot aggregation: a chain of D(2+1)D layers whose outputs (and, at stride 1,
    the input) are concatenated and projected by ``c`` + ``c_bn`` (the block's ``branch2``)."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int):
        super().__init__()
        self.keep_input = stride == 1
        self.layers = nn.ModuleList()
        plane = dim_in
        for j in range(NUM_CONV):
            self.layers.append(D2Plus1D(plane, dim_inner, stride if j == 0 else 1, use_se=j % 2 == 0))
            plane = dim_inner // 2
        concat = plane * NUM_CONV + (dim_in if self.keep_input else 0)
        self.c = PointwiseConv3d(concat, dim_out, 1, bias=False)
        self.c_bn = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x] if self.keep_input else []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return conv_bn(self.c, self.c_bn, torch.cat(outputs, dim=1))  # (B, C_out, T, H / s, W / s)


class VoV3DStage(nn.Module):
    """Blocks ``pathway0_res{i}``, spatial stride 2 in block 0."""

    def __init__(self, depth: int, dim_in: int, dim_inner: int, dim_out: int):
        super().__init__()
        self.depth = depth
        for i in range(depth):
            block_in, stride = (dim_in, 2) if i == 0 else (dim_out, 1)
            self.add_module(f"pathway0_res{i}", ProjectedResBlock(block_in, dim_out, stride,
                                                                  TOSA(block_in, dim_inner, dim_out, stride), BN_EPS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.depth):
            x = getattr(self, f"pathway0_res{i}")(x)
        return x


class VoV3D(Backbone):
    """VoV3D feature extractor: clip (B, 3, T, H, W) -> (B, 2048) (``feature="lin5"``).

    Args:
        size: ``"m"`` or ``"l"`` (set by the registered names).
        feature: ``"lin5"`` (2048, default), ``"conv5"`` (8C) or ``"s5"`` (4C).
        crop: centre crop; default 256, the official Kinetics test crop.
        short_side: short side before cropping; default 256 (official test scale).
        init_seed: seed of the random init used without a checkpoint.
    """

    checkpoint_ignore_prefixes = ("head.projection.",)

    def __init__(self, size: str = "m", feature: str = "lin5", crop: int = 256, short_side: int = 256,
                 init_seed: int = 0):
        super().__init__()
        if size not in PRESETS:
            raise TadInputError("--backbone-option size", f"must be one of {', '.join(PRESETS)}, got {size!r}")
        if feature not in FEATURES:
            raise TadInputError("--backbone-option feature", f"must be one of {', '.join(FEATURES)}, got {feature!r}")
        inner_ch, depths, _, _ = PRESETS[size]
        self.size, self.feature, self.depths = size, feature, depths
        self.registry_name = f"vov3d_{size}"
        self.s1 = nn.Module()
        self.s1.pathway0_stem = X3DStem(inner_ch // 2)
        dim_in = inner_ch // 2
        for stage, depth in enumerate(depths):
            dim_out, dim_inner = int(inner_ch * OUT_MULTIPLIER[stage]), inner_ch * INNER_MULTIPLIER[stage]
            self.add_module(f"s{stage + 2}", VoV3DStage(depth, dim_in, dim_inner, dim_out))
            dim_in = dim_out
        self.head = X3DHead(dim_in, inner_ch * INNER_MULTIPLIER[-1])
        dims = {"lin5": DIM_C5, "conv5": inner_ch * INNER_MULTIPLIER[-1], "s5": dim_in}
        self.spec = BackboneSpec(clip_len=16, frame_interval=5, feature_dim=dims[feature], fps=30.0,
                                 short_side=short_side, crop=crop, extra=dict(size=size, feature=feature, depths=depths))
        if not self.head.lin_5.weight.is_meta:  # built on the meta device: shapes only, nothing to draw
            init_resnet_weights(self, init_seed, zero_bn_suffix="c_bn")

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        x = self.s1.pathway0_stem(clips)  # (B, C/2, T, H/2, W/2)
        for stage in range(2, 6):
            x = getattr(self, f"s{stage}")(x)  # (B, C_s, T, H/2^s, W/2^s)
        if self.feature == "s5":
            return [x]  # (B, 4C, T, H/32, W/32)
        return [F.relu(conv_bn(self.head.conv_5, self.head.conv_5_bn, x))]  # (B, 8C, T, H/32, W/32)

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        pooled = super().forward(clips, spatial_grid)  # (B, C) or (B, C, g, g)
        if self.feature != "lin5":
            return pooled
        grid = pooled if spatial_grid is not None else pooled[:, :, None, None]  # (B, 8C, g, g)
        out = F.relu(self.head.lin_5(grid.unsqueeze(2))).squeeze(2)  # (B, 2048, g, g)
        return out if spatial_grid is not None else out[:, :, 0, 0]


def _register(size: str) -> type[VoV3D]:
    _, _, gflops, checkpoints = PRESETS[size]
    card = BackboneCard(
        paper="VoV3D: Diverse Temporal Aggregation and Depthwise Spatiotemporal Factorization (Lee et al., 2020)",
        input="16 x 5 @ 256^2", norm="mean 0.45 / std 0.225, RGB [0, 1]; short side 256, centre crop 256",
        feature_dim=DIM_C5, gflops=gflops, checkpoints=checkpoints,
        source="youngwanLEE/VoV3D README, Kinetics-400 (dl.dropbox.com links)",
    )

    def __init__(self, feature: str = "lin5", crop: int = 256, short_side: int = 256, init_seed: int = 0):
        VoV3D.__init__(self, size, feature=feature, crop=crop, short_side=short_side, init_seed=init_seed)

    cls = type(f"VoV3D{size.upper()}", (VoV3D,), {"__init__": __init__, "card": card, "__module__": __name__,
                                                   "__doc__": f"VoV3D-{size.upper()}: see :class:`VoV3D`."})
    return BACKBONES.register_module(name=f"vov3d_{size}", module=cls)


VoV3DM, VoV3DL = (_register(size) for size in PRESETS)
