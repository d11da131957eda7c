"""R3D-18, MC3-18, R(2+1)D-18 (Tran et al., CVPR 2018, torchvision's Kinetics-400 weights) and
R(2+1)D-34 as released by TSP (Alwassel et al., ICCVW 2021), with the official key names.

Contract: ``(B, 3, T, H, W)`` clips normalised with the Kinetics mean/std below ->
``(B, 512)``, the global average of ``layer4`` (the input of the official ``fc``).

Layouts (keys exactly as the official ``state_dict``):
- torchvision ``VideoResNet``: ``stem.*``, ``layer{1..4}.{i}.conv{1,2}.*``, ``downsample.*``
  and ``fc.*`` (ignored). A residual conv is ``conv1.0`` (one Conv3d, or a
  ``Conv2Plus1D`` Sequential: ``0`` spatial 1x3x3 conv, ``1`` BN, ``3`` temporal 3x1x1 conv)
  followed by BN ``conv1.1``.
- TSP: the same network under ``features.`` (TSP's ``Model`` replaces ``fc`` by an empty
  Sequential) plus its heads ``fc1.*``/``fc2.*`` (ignored); BN eps 1e-3 (the Caffe2 IG-65M port).

Mid-channels of a (2+1)D conv follow M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out)) with
t = d = 3. The two official codes apply it differently, and the checkpoints differ with them:
torchvision computes M once per residual block from (block input, block output) and uses it
for both convs of the block; TSP's ``Conv2Plus1D`` computes it per conv from that conv's own
channels. Both stems are a fixed 45 mid-channels (3 -> 45 -> 64), not the formula's 83.
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

#: Kinetics normalisation of torchvision's video models (and TSP), RGB in [0, 1].
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
KINETICS_NORM = "RGB [0, 1], mean (0.432, 0.395, 0.376) / std (0.228, 0.221, 0.217)"
CONV_KINDS = ("3d", "2d", "2plus1d")
MIDPLANE_RULES = ("per_block", "per_conv")
STEM_MID = 45  # torchvision's R2Plus1dStem: 3 -> 45 -> 64


def midplanes(in_planes: int, out_planes: int) -> int:
    """The paper's (2+1)D mid-channel count for a 3x3x3 conv: t d^2 N_in N_out / (d^2 N_in + t N_out)."""
    return (in_planes * out_planes * 27) // (in_planes * 9 + 3 * out_planes)


class Conv2Plus1D(nn.Sequential):
    """1x3x3 conv (spatial stride) -> BN -> ReLU -> 3x1x1 conv (temporal stride); keys 0, 1, 3."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int, stride: int, bn_eps: float):
        super().__init__(
            nn.Conv3d(in_planes, mid_planes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid_planes, eps=bn_eps),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid_planes, out_planes, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(conv_bn(self[0], self[1], x))  # (B, M, T, H/s, W/s)


def make_conv(kind: str, in_planes: int, out_planes: int, mid_planes: int, stride: int, bn_eps: float) -> nn.Module:
    """The residual 3x3x3-equivalent conv of one kind: full 3D, 2D only (MC), or (2+1)D."""
    if kind == "3d":
        return nn.Conv3d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
    if kind == "2d":
        return nn.Conv3d(in_planes, out_planes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)
    return Conv2Plus1D(in_planes, out_planes, mid_planes, stride, bn_eps)


def conv_then_bn(conv: nn.Module, bn: nn.BatchNorm3d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))``, the BN folded into the (last) conv at inference."""
    if isinstance(conv, Conv2Plus1D):
        return conv_bn(conv[3], bn, conv.spatial(x))
    return conv_bn(conv, bn, x)


class BasicBlock(nn.Module):
    """Two convs with BN (``conv1``: conv, BN, ReLU; ``conv2``: conv, BN) plus the shortcut."""

    def __init__(self, kind: str, in_planes: int, planes: int, stride: int, midplane_rule: str, bn_eps: float):
        super().__init__()
        if midplane_rule == "per_block":
            mids = (midplanes(in_planes, planes),) * 2
        else:
            mids = (midplanes(in_planes, planes), midplanes(planes, planes))
        self.conv1 = nn.Sequential(make_conv(kind, in_planes, planes, mids[0], stride, bn_eps),
                                   nn.BatchNorm3d(planes, eps=bn_eps), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(make_conv(kind, planes, planes, mids[1], 1, bn_eps), nn.BatchNorm3d(planes, eps=bn_eps))
        if stride != 1 or in_planes != planes:
            ds_stride = (1, stride, stride) if kind == "2d" else (stride,) * 3
            self.downsample = nn.Sequential(PointwiseConv3d(in_planes, planes, 1, stride=ds_stride, bias=False),
                                            nn.BatchNorm3d(planes, eps=bn_eps))
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(conv_then_bn(self.conv1[0], self.conv1[1], x))
        out = conv_then_bn(self.conv2[0], self.conv2[1], out)
        shortcut = x if self.downsample is None else conv_bn(self.downsample[0], self.downsample[1], x)
        return F.relu(out + shortcut)


class Stem(nn.Sequential):
    """``basic``: 3x7x7 conv stride (1, 2, 2) -> BN -> ReLU (keys 0, 1); ``2plus1d``: 1x7x7 conv to
    45 channels -> BN -> ReLU -> 3x1x1 conv to 64 -> BN -> ReLU (keys 0, 1, 3, 4)."""

    def __init__(self, kind: str, bn_eps: float):
        if kind == "basic":
            super().__init__(nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                             nn.BatchNorm3d(64, eps=bn_eps), nn.ReLU(inplace=True))
        else:
            super().__init__(nn.Conv3d(3, STEM_MID, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
                             nn.BatchNorm3d(STEM_MID, eps=bn_eps), nn.ReLU(inplace=True),
                             nn.Conv3d(STEM_MID, 64, (3, 1, 1), padding=(1, 0, 0), bias=False),
                             nn.BatchNorm3d(64, eps=bn_eps), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(conv_bn(self[0], self[1], x))  # (B, 64 or 45, T, H/2, W/2)
        if len(self) > 3:
            x = F.relu(conv_bn(self[3], self[4], x))  # (B, 64, T, H/2, W/2)
        return x


class VideoResNetTrunk(nn.Module):
    """``stem``, ``layer1`` .. ``layer4`` of torchvision's ``VideoResNet`` (no pooling, no fc).

    Args:
        stem: ``"basic"`` (R3D, MC3) or ``"2plus1d"``.
        kinds: conv kind per layer, each one of ``CONV_KINDS``.
        depths: residual blocks per layer.
        midplane_rule: ``"per_block"`` (torchvision) or ``"per_conv"`` (TSP).
        bn_eps: BatchNorm eps (torchvision 1e-5, TSP 1e-3).
    """

    def __init__(self, stem: str, kinds: tuple[str, ...], depths: tuple[int, ...], midplane_rule: str = "per_block",
                 bn_eps: float = 1e-5):
        super().__init__()
        self.stem = Stem(stem, bn_eps)
        in_planes = 64
        for i, (kind, depth) in enumerate(zip(kinds, depths)):
            planes = 64 * 2 ** i
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(BasicBlock(kind, in_planes, planes, stride, midplane_rule, bn_eps))
                in_planes = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.stem(clips)  # (B, 64, T, H/2, W/2)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x  # (B, 512, T/8 (R3D, R(2+1)D) or T (MC3), H/16, W/16)


def _kinetics_spec(owner: str, clip_len: int, fps: float, clip_stride: int, short_side: int, crop: int,
                   **extra) -> BackboneSpec:
    """The Kinetics-trained video ResNets' spec (512-d, every frame); non-positive sizes -> one error naming
    ``owner`` (the backbone) and the option."""
    for value, flag in ((clip_len, "clip_len"), (fps, "fps"), (clip_stride, "clip_stride"),
                        (short_side, "short_side"), (crop, "crop")):
        if value <= 0:
            raise TadInputError(owner, f"{flag} must be positive, got {value}")
    return BackboneSpec(clip_len=clip_len, frame_interval=1, feature_dim=512, fps=fps, clip_stride=clip_stride,
                        mean=KINETICS_MEAN, std=KINETICS_STD, short_side=short_side, crop=crop, extra=extra)


class _TorchvisionVideoResNet(Backbone):
    """torchvision's Kinetics-400 video ResNet-18s: 16 frames at 15 fps, 112^2 centre crop -> 512."""

    checkpoint_ignore_prefixes = ("fc.",)
    stem_kind = "basic"
    kinds: tuple[str, ...] = ()

    def __init__(self, clip_len: int = 16, fps: float = 15.0, clip_stride: int = 4, short_side: int = 128,
                 crop: int = 112, init_seed: int = 0):
        super().__init__()
        self.spec = _kinetics_spec(self.registry_name, clip_len, fps, clip_stride, short_side, crop,
                                   official_resize="(128, 171): equals short side 128 on 4:3 video")
        trunk = VideoResNetTrunk(self.stem_kind, self.kinds, (2, 2, 2, 2), "per_block", 1e-5)
        for name, module in trunk.named_children():  # top-level keys, as torchvision names them
            self.add_module(name, module)
        init_resnet_weights(self, init_seed)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        return [VideoResNetTrunk.forward(self, clips)]  # (B, 512, t, h, w)


def _tv_card(paper_model: str, gflops: float, checkpoint: str) -> BackboneCard:
    return BackboneCard(
        paper=f"{paper_model}: A Closer Look at Spatiotemporal Convolutions (Tran et al., CVPR 2018)",
        input="16 x 1 @ 112^2 (15 fps)", norm=KINETICS_NORM, feature_dim=512, gflops=gflops,
        checkpoints=(checkpoint,), source="torchvision model zoo (download.pytorch.org/models)")


@BACKBONES.register_module(name="r3d_18")
class R3D18(_TorchvisionVideoResNet):
    registry_name = "r3d_18"
    kinds = ("3d",) * 4
    card = _tv_card("R3D-18", 81.4, "r3d_18-b3b3357e.pth")


@BACKBONES.register_module(name="mc3_18")
class MC318(_TorchvisionVideoResNet):
    registry_name = "mc3_18"
    kinds = ("3d", "2d", "2d", "2d")
    card = _tv_card("MC3-18", 86.7, "mc3_18-a90a0ba3.pth")


@BACKBONES.register_module(name="r2plus1d_18")
class R2Plus1D18(_TorchvisionVideoResNet):
    registry_name = "r2plus1d_18"
    stem_kind = "2plus1d"
    kinds = ("2plus1d",) * 4
    card = _tv_card("R(2+1)D-18", 81.0, "r2plus1d_18-91a641e6.pth")


@BACKBONES.register_module(name="r2plus1d_34_tsp")
class R2Plus1D34TSP(Backbone):
    """TSP's R(2+1)D-34 (IG-65M + Kinetics init, TSP-trained on ActivityNet or THUMOS14): 16
    consecutive frames at 30 fps, 112^2 -> the 512-d feature TSP's heads read (its released features
    take a clip every 16 frames)."""

    registry_name = "r2plus1d_34_tsp"
    checkpoint_ignore_prefixes = ("fc1.", "fc2.", "fc.")
    card = BackboneCard(
        paper="TSP: Temporally-Sensitive Pretraining (Alwassel et al., ICCVW 2021); R(2+1)D-34 (Tran et al., 2018)",
        input="16 x 1 @ 112^2 (30 fps, clip every 16 frames)", norm=KINETICS_NORM, feature_dim=512, gflops=152.4,
        checkpoints=("r2plus1d_34-tsp_on_activitynet-max_gvf-backbone_lr_0.0001-fc_lr_0.002-epoch_5-0d2cf854.pth",
                     "r2plus1d_34-tsp_on_thumos14-max_gvf-backbone_lr_0.0001-fc_lr_0.004-epoch_4-e6a30b2f.pth"),
        source="HumamAlwassel/TSP GitHub release 'model_weights'")

    def __init__(self, clip_len: int = 16, fps: float = 30.0, clip_stride: int = 16, short_side: int = 128,
                 crop: int = 112, init_seed: int = 0):
        super().__init__()
        self.spec = _kinetics_spec(self.registry_name, clip_len, fps, clip_stride, short_side, crop,
                                   official_resize="(128, 171): equals short side 128 on 4:3 video")
        self.features = VideoResNetTrunk("2plus1d", ("2plus1d",) * 4, (3, 4, 6, 3), "per_conv", 1e-3)
        init_resnet_weights(self, init_seed)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        return [self.features(clips)]  # (B, 512, T/8, H/16, W/16)
