"""X3D-XS/S/M/L (Feichtenhofer, CVPR 2020) with the official SlowFast state_dict key names.

Registered as ``x3d_xs``, ``x3d_s``, ``x3d_m``, ``x3d_l``. Each spec carries the official
single-view test pre-processing of facebookresearch/SlowFast ``configs/Kinetics/X3D_*.yaml``
(``TEST.NUM_SPATIAL_CROPS: 1``: short side = crop): XS 4 frames every 12 @ 160^2,
S 13 every 6 @ 160^2, M 16 every 5 @ 224^2, L 16 every 5 @ 312^2; 30 fps; mean 0.45, std 0.225.

Architecture (both official implementations agree): stem = 1x3x3 conv stride (1,2,2) then a
depthwise 5x1x1 conv, BN, ReLU; four stages of (1, 2, 5, 3) x depth factor (2.2 for XS/S/M,
5.0 for L, rounded up) bottlenecks 1x1x1 -> depthwise 3x3x3 (spatial stride 2 in the first
block) -> BN -> SE (every other block, from the first) -> Swish -> 1x1x1; widths 24, 48, 96,
192 with inner width 2.25x; head ``conv_5`` 1x1x1 to 432 + BN + ReLU, global average,
``lin_5`` 1x1x1 to 2048 + ReLU. The feature (``feature="lin5"``, 2048-d) is the
pre-classifier vector; ``feature="conv5"`` (432-d, the pooled ``conv_5`` map) and
``feature="s5"`` (192-d, the pooled res5 map) are the earlier ones. The official head pools
with a fixed AvgPool3d sized for the test crop, which equals global pooling there.

Checkpoints that load unchanged (strictly; the classifier ``projection``/``proj`` is dropped):
- SlowFast ``.pyth`` (``{"model_state": {"s1.pathway0_stem.conv_xy.weight", ...}}``);
- pytorchvideo hub ``.pyth`` (``{"model_state": {"blocks.0.conv.conv_t.weight", ...}}``),
  renamed by ``pytorchvideo_key``. pytorchvideo's X3D has no BN on the res2 shortcut (its
  res2 keeps 24 channels, and it only adds a shortcut BN when the width changes); such
  files set that BN to the identity, which is exactly pytorchvideo's computation.

Continual / streaming models (CoX3D) need every operation that mixes frames:
``X3D.temporal_layers()`` lists each, in forward order, with its kernel, stride and padding.

GFLOPs on the cards are FLOPs (2 x multiply-adds, ``torch.utils.flop_counter``) per clip
at the official test size; the X3D paper counts multiply-adds (about half).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones._init_weights import init_resnet_weights
from tad.features.backbones._layers import PointwiseConv3d, ProjectedResBlock, conv_bn
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.registry import BACKBONES

BN_EPS = 1e-5
DIM_C1 = 12
WIDTH_FACTOR = 2.0
BOTTLENECK_FACTOR = 2.25
DIM_C5 = 2048
SE_RATIO = 0.0625
STAGE_BLOCKS = (1, 2, 5, 3)
STEM_TEMPORAL_KERNEL = 5
BLOCK_TEMPORAL_KERNEL = 3
FEATURES = ("lin5", "conv5", "s5")

#: name -> (clip_len, frame_interval, crop, depth_factor, GFLOPs per clip at that size)
PRESETS = {
    "xs": (4, 12, 160, 2.2, 1.21),
    "s": (13, 6, 160, 2.2, 3.92),
    "m": (16, 5, 224, 2.2, 9.46),
    "l": (16, 5, 312, 5.0, 36.73),
}

_SOURCE = ("x3d_*.pyth: facebookresearch/SlowFast MODEL_ZOO.md (dl.fbaipublicfiles.com/pyslowfast/x3d_models/); "
           "X3D_*.pyth: pytorchvideo hub (dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/)")


def round_width(width: float, multiplier: float, min_width: int = 1, divisor: int = 1) -> int:
    """Channel rounding of the official code: nearest multiple of ``divisor``, at least
    ``min_width``, and never more than 10 % below ``width * multiplier``."""
    width *= multiplier
    min_width = min_width or divisor
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return int(out)


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS)


@dataclass(frozen=True)
class TemporalLayer:
    """One operation of the forward pass that mixes frames.

    ``kind`` is ``"conv"`` (a t x k x k convolution; ``groups`` == channels for depthwise)
    or ``"global_pool"`` (an average over all frames: the SE squeeze and the head pool;
    kernel/padding are then None). ``name`` is the module path in the state dict.
    """

    name: str
    kind: str
    kernel: int | None
    stride: int
    padding: int | None
    channels: int
    groups: int = 1


class X3DStem(nn.Module):
    """conv_xy 1x3x3 stride (1,2,2) -> depthwise conv 5x1x1 -> BN -> ReLU (``s1.pathway0_stem``)."""

    def __init__(self, dim_out: int):
        super().__init__()
        self.conv_xy = nn.Conv3d(3, dim_out, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv = nn.Conv3d(dim_out, dim_out, (STEM_TEMPORAL_KERNEL, 1, 1),
                              padding=(STEM_TEMPORAL_KERNEL // 2, 0, 0), groups=dim_out, bias=False)
        self.bn = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_xy(x)  # (B, 24, T, H/2, W/2)
        return F.relu(conv_bn(self.conv, self.bn, x))


class SqueezeExcite(nn.Module):
    """x * sigmoid(fc2(relu(fc1(mean_THW(x))))) with 1x1x1 convs ``fc1``/``fc2`` (with bias)."""

    def __init__(self, channels: int):
        super().__init__()
        reduced = round_width(channels, SE_RATIO, min_width=8, divisor=8)
        self.fc1 = nn.Conv3d(channels, reduced, 1, bias=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3, 4), keepdim=True)  # (B, C, 1, 1, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class X3DTransform(nn.Module):
    """a 1x1x1 -> BN -> ReLU -> b 3x3x3 depthwise (spatial stride) -> BN -> [SE] -> Swish -> c 1x1x1 -> BN."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, use_se: bool):
        super().__init__()
        self.a = PointwiseConv3d(dim_in, dim_inner, 1, bias=False)
        self.a_bn = _bn(dim_inner)
        self.b = nn.Conv3d(dim_inner, dim_inner, (BLOCK_TEMPORAL_KERNEL, 3, 3), stride=(1, stride, stride),
                           padding=(BLOCK_TEMPORAL_KERNEL // 2, 1, 1), groups=dim_inner, bias=False)
        self.b_bn = _bn(dim_inner)
        self.se = SqueezeExcite(dim_inner) if use_se else None
        self.c = PointwiseConv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(conv_bn(self.a, self.a_bn, x))  # (B, C_inner, T, H, W)
        x = conv_bn(self.b, self.b_bn, x)  # (B, C_inner, T, H / stride, W / stride)
        if self.se is not None:
            x = self.se(x)
        return conv_bn(self.c, self.c_bn, F.silu(x))  # (B, C_out, T, H / stride, W / stride)


class X3DBlock(ProjectedResBlock):
    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, use_se: bool):
        super().__init__(dim_in, dim_out, stride, X3DTransform(dim_in, dim_inner, dim_out, stride, use_se), BN_EPS)


class X3DStage(nn.Module):
    """Blocks ``pathway0_res{i}``; SE on blocks 0, 2, 4, ...; spatial stride 2 in block 0."""

    def __init__(self, depth: int, dim_in: int, dim_inner: int, dim_out: int):
        super().__init__()
        self.depth = depth
        for i in range(depth):
            self.add_module(f"pathway0_res{i}", X3DBlock(dim_in if i == 0 else dim_out, dim_inner, dim_out,
                                                         2 if i == 0 else 1, use_se=(i + 1) % 2 == 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.depth):
            x = getattr(self, f"pathway0_res{i}")(x)
        return x


class X3DHead(nn.Module):
    """``conv_5`` 1x1x1 + BN + ReLU; ``lin_5`` 1x1x1 (no bias) + ReLU after pooling."""

    def __init__(self, dim_in: int, dim_inner: int):
        super().__init__()
        self.conv_5 = PointwiseConv3d(dim_in, dim_inner, 1, bias=False)
        self.conv_5_bn = _bn(dim_inner)
        self.lin_5 = PointwiseConv3d(dim_inner, DIM_C5, 1, bias=False)


class X3D(Backbone):
    """X3D feature extractor: clip (B, 3, T, H, W) -> (B, 2048) (``feature="lin5"``).

    Args:
        size: ``"xs"``, ``"s"``, ``"m"`` or ``"l"`` (set by the registered names).
        feature: ``"lin5"`` (2048, default), ``"conv5"`` (432) or ``"s5"`` (192).
        crop: centre crop; default the official test crop of ``size``.
        short_side: short side before cropping; default equal to ``crop`` (official single view).
        init_seed: seed of the random init used without a checkpoint.
    """

    checkpoint_ignore_prefixes = ("head.projection.", "blocks.5.proj.")

    def __init__(self, size: str = "m", feature: str = "lin5", crop: int | None = None,
                 short_side: int | None = None, init_seed: int = 0):
        super().__init__()
        if size not in PRESETS:
            raise ValueError(f"size must be one of {', '.join(PRESETS)}, got {size!r}")
        if feature not in FEATURES:
            raise ValueError(f"feature must be one of {', '.join(FEATURES)}, got {feature!r}")
        clip_len, interval, test_crop, depth_factor, gflops = PRESETS[size]
        crop = crop or test_crop
        self.size, self.feature = size, feature
        self.registry_name = f"x3d_{size}"
        dim_stem = round_width(DIM_C1, WIDTH_FACTOR)
        widths = [DIM_C1]
        for _ in range(3):
            widths.append(round_width(widths[-1], 2.0, divisor=8))
        self.depths = tuple(int(math.ceil(depth_factor * n)) for n in STAGE_BLOCKS)
        self.s1 = nn.Module()
        self.s1.pathway0_stem = X3DStem(dim_stem)
        dim_in = dim_stem
        for stage, (base, depth) in enumerate(zip(widths, self.depths)):
            dim_out = round_width(base, WIDTH_FACTOR)
            dim_inner = int(BOTTLENECK_FACTOR * dim_out)
            self.add_module(f"s{stage + 2}", X3DStage(depth, dim_in, dim_inner, dim_out))
            dim_in = dim_out
        self.head = X3DHead(dim_in, dim_inner)
        dims = {"lin5": DIM_C5, "conv5": dim_inner, "s5": dim_in}
        self.spec = BackboneSpec(
            clip_len=clip_len, frame_interval=interval, feature_dim=dims[feature], fps=30.0,
            short_side=short_side or crop, crop=crop, extra=dict(size=size, feature=feature, depths=self.depths),
        )
        init_resnet_weights(self, init_seed, zero_bn_suffix="c_bn")

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        x = self.s1.pathway0_stem(clips)  # (B, 24, T, H/2, W/2)
        for stage in range(2, 6):
            x = getattr(self, f"s{stage}")(x)  # (B, C_s, T, H/2^s, W/2^s)
        if self.feature == "s5":
            return [x]  # (B, 192, T, H/32, W/32)
        return [F.relu(conv_bn(self.head.conv_5, self.head.conv_5_bn, x))]  # (B, 432, T, H/32, W/32)

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        pooled = super().forward(clips, spatial_grid)  # (B, C) or (B, C, g, g)
        if self.feature != "lin5":
            return pooled
        grid = pooled if spatial_grid is not None else pooled[:, :, None, None]  # (B, 432, g, g)
        out = F.relu(self.head.lin_5(grid.unsqueeze(2))).squeeze(2)  # (B, 2048, g, g)
        return out if spatial_grid is not None else out[:, :, 0, 0]

    def temporal_layers(self) -> list[TemporalLayer]:
        """Every frame-mixing operation in forward order (what a continual CoX3D replaces).

        The stem's depthwise ``s1.pathway0_stem.conv`` (kernel 5, pad 2); in every block the
        depthwise ``branch2.b`` (kernel 3, pad 1, stride 1 in time) and, on blocks with SE,
        the SE squeeze (a global average over T, H, W); finally the head's global average
        before ``lin_5``. Every temporal stride is 1 and every temporal padding is zero
        padding of kernel // 2, so the output has as many frames as the input.
        """
        stem = self.s1.pathway0_stem.conv
        layers = [TemporalLayer("s1.pathway0_stem.conv", "conv", stem.kernel_size[0], stem.stride[0],
                                stem.padding[0], stem.out_channels, stem.groups)]
        for stage in range(2, 6):
            for i in range(self.depths[stage - 2]):
                name = f"s{stage}.pathway0_res{i}.branch2"
                branch = self.get_submodule(name)
                conv = branch.b
                layers.append(TemporalLayer(f"{name}.b", "conv", conv.kernel_size[0], conv.stride[0],
                                            conv.padding[0], conv.out_channels, conv.groups))
                if branch.se is not None:
                    layers.append(TemporalLayer(f"{name}.se", "global_pool", None, 1, None, conv.out_channels))
        layers.append(TemporalLayer("head.avg_pool", "global_pool", None, 1, None, self.head.conv_5.out_channels))
        return layers

    # ---- checkpoint layouts -------------------------------------------------------------------
    def convert_checkpoint_keys(self, state: dict[str, object]) -> dict[str, object]:
        """pytorchvideo hub keys (``blocks.*``) -> SlowFast keys; SlowFast files pass unchanged."""
        if not any(k.startswith("blocks.") for k in state):
            return state
        out: dict[str, object] = {}
        for key, value in state.items():
            out[self.pytorchvideo_key(key) or f"<pytorchvideo>{key}"] = value
        shortcut_bn = "s2.pathway0_res0.branch1_bn."
        if not any(k.startswith(shortcut_bn) for k in out):  # pytorchvideo: no BN on the res2 shortcut
            bn = self.s2.pathway0_res0.branch1_bn
            out.update({shortcut_bn + "weight": torch.ones_like(bn.weight), shortcut_bn + "bias": torch.zeros_like(bn.bias),
                        shortcut_bn + "running_mean": torch.zeros_like(bn.running_mean),
                        shortcut_bn + "running_var": torch.full_like(bn.running_var, 1.0 - bn.eps)})
        return out

    @staticmethod
    def pytorchvideo_key(key: str) -> str | None:
        """SlowFast key of a pytorchvideo ``create_x3d`` key (None: not part of the backbone).

        pytorchvideo names the stem's spatial conv ``conv_t`` and its temporal conv ``conv_xy``
        (``Conv2plus1d(conv_t=conv_xy_module, conv_xy=conv_t_module)``); the order of
        computation is the same as SlowFast's (spatial first).
        """
        fixed = {"blocks.0.conv.conv_t.weight": "s1.pathway0_stem.conv_xy.weight",
                 "blocks.0.conv.conv_xy.weight": "s1.pathway0_stem.conv.weight",
                 "blocks.5.pool.pre_conv.weight": "head.conv_5.weight",
                 "blocks.5.pool.post_conv.weight": "head.lin_5.weight"}
        if key in fixed:
            return fixed[key]
        match = re.match(r"^blocks\.0\.norm\.(.+)$", key)
        if match:
            return f"s1.pathway0_stem.bn.{match.group(1)}"
        match = re.match(r"^blocks\.5\.pool\.pre_norm\.(.+)$", key)
        if match:
            return f"head.conv_5_bn.{match.group(1)}"
        match = re.match(r"^blocks\.([1-4])\.res_blocks\.(\d+)\.(.+)$", key)
        if not match:
            return None
        stage, index, rest = int(match.group(1)) + 1, match.group(2), match.group(3)
        rules = ((r"^branch1_conv\.(.+)$", "branch1.{}"), (r"^branch1_norm\.(.+)$", "branch1_bn.{}"),
                 (r"^branch2\.conv_([abc])\.(.+)$", "branch2.{}.{}"), (r"^branch2\.norm_([ac])\.(.+)$", "branch2.{}_bn.{}"),
                 (r"^branch2\.norm_b\.0\.(.+)$", "branch2.b_bn.{}"),
                 (r"^branch2\.norm_b\.1\.block\.0\.(.+)$", "branch2.se.fc1.{}"),
                 (r"^branch2\.norm_b\.1\.block\.2\.(.+)$", "branch2.se.fc2.{}"))
        for pattern, template in rules:
            inner = re.match(pattern, rest)
            if inner:
                return f"s{stage}.pathway0_res{index}." + template.format(*inner.groups())
        return None


def _card(size: str) -> BackboneCard:
    clip_len, interval, crop, _, gflops = PRESETS[size]
    return BackboneCard(
        paper="X3D: Expanding Architectures for Efficient Video Recognition (Feichtenhofer, CVPR 2020)",
        input=f"{clip_len} x {interval} @ {crop}^2", norm="mean 0.45 / std 0.225, RGB [0, 1]", feature_dim=DIM_C5,
        gflops=gflops, checkpoints=(f"x3d_{size}.pyth", f"X3D_{size.upper()}.pyth"),
        source=_SOURCE, continual=("CoX3D (temporal_layers() lists kernels/paddings)",),
    )


def _register(size: str) -> type[X3D]:
    def __init__(self, feature: str = "lin5", crop: int | None = None, short_side: int | None = None,
                 init_seed: int = 0):
        X3D.__init__(self, size, feature=feature, crop=crop, short_side=short_side, init_seed=init_seed)

    cls = type(f"X3D{size.upper()}", (X3D,), {"__init__": __init__, "card": _card(size), "__module__": __name__,
                                               "__doc__": f"X3D-{size.upper()}: see :class:`X3D`."})
    return BACKBONES.register_module(name=f"x3d_{size}", module=cls)


X3DXS, X3DS, X3DM, X3DL = (_register(size) for size in PRESETS)
