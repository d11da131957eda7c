"""S3D (Xie et al., "Rethinking Spatiotemporal Feature Learning", ECCV 2018): separable 3D
Inception, as released in kylemin/S3D (``S3D_kinetics400.pt``) and in torchvision (``s3d``).

Contract: ``(B, 3, T, H, W)`` clips -> ``(B, 1024)``: the official head's pooling, an average
over (2, H, W) windows of the Mixed_5c map with temporal stride 1, averaged over the windows;
the official classifier (a 1x1x1 conv) applied to this vector gives the official logits. At
T' = 1 (clips shorter than 9 frames) the window is the whole map.

Neither official release has the S3D-G feature gating: both are the plain S3D layout (the
gating modules of the paper's S3D-G hold weights neither checkpoint has), so this is S3D.

Key layouts, both loaded strictly into the same modules:
- kylemin: ``base.{i}.conv_s / bn_s / conv_t / bn_t`` (separable conv), ``base.{i}.conv / bn``,
  ``base.{i}.branch{b}.{j}...`` inside Mixed blocks, head ``fc.0`` (ignored); ``module.`` prefix.
- torchvision: ``features.{i}.{0,1}.{0,1}`` (separable conv: spatial/temporal x conv/BN),
  ``features.{i}.{0,1}`` (conv/BN), ``branch0.{0,1}`` directly, head ``classifier.1`` (ignored).
The two releases were trained with different pre-processing, hence two registry names:
``s3d`` (kylemin: RGB scaled to [-1, 1]) and ``s3d_tv`` (torchvision's Kinetics mean/std).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones._init_weights import init_resnet_weights
from tad.features.backbones._layers import PointwiseConv3d, conv_bn
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.backbones.video_resnet import KINETICS_MEAN, KINETICS_NORM, KINETICS_STD
from tad.features.registry import BACKBONES

BN_EPS = 1e-3
#: Mixed blocks: (in, branch0 out, branch1 mid, branch1 out, branch2 mid, branch2 out, branch3 out).
MIXED = {
    "3b": (192, 64, 96, 128, 16, 32, 32), "3c": (256, 128, 128, 192, 32, 96, 64),
    "4b": (480, 192, 96, 208, 16, 48, 64), "4c": (512, 160, 112, 224, 24, 64, 64),
    "4d": (512, 128, 128, 256, 24, 64, 64), "4e": (512, 112, 144, 288, 32, 64, 64),
    "4f": (528, 256, 160, 320, 32, 128, 128),
    "5b": (832, 256, 160, 320, 32, 128, 128), "5c": (832, 384, 192, 384, 48, 128, 128),
}


class BasicConv3d(nn.Module):
    """conv (no bias) -> BN -> ReLU (``conv``, ``bn``)."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int = 1):
        super().__init__()
        conv = PointwiseConv3d if kernel_size == 1 else nn.Conv3d
        self.conv = conv(in_planes, out_planes, kernel_size, bias=False)
        self.bn = nn.BatchNorm3d(out_planes, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(conv_bn(self.conv, self.bn, x))


class SepConv3d(nn.Module):
    """1xkxk conv (spatial stride) -> BN -> ReLU -> kx1x1 conv (temporal stride) -> BN -> ReLU."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, stride: int, padding: int):
        super().__init__()
        k, s, p = kernel_size, stride, padding
        self.conv_s = nn.Conv3d(in_planes, out_planes, (1, k, k), stride=(1, s, s), padding=(0, p, p), bias=False)
        self.bn_s = nn.BatchNorm3d(out_planes, eps=BN_EPS)
        self.conv_t = nn.Conv3d(out_planes, out_planes, (k, 1, 1), stride=(s, 1, 1), padding=(p, 0, 0), bias=False)
        self.bn_t = nn.BatchNorm3d(out_planes, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(conv_bn(self.conv_s, self.bn_s, x))
        return F.relu(conv_bn(self.conv_t, self.bn_t, x))


class Mixed(nn.Module):
    """Inception block with separable 3x3x3 convs; branches concatenated in order 0..3."""

    def __init__(self, c_in: int, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int, b3: int):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv3d(c_in, b0))
        self.branch1 = nn.Sequential(BasicConv3d(c_in, b1_mid), SepConv3d(b1_mid, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(BasicConv3d(c_in, b2_mid), SepConv3d(b2_mid, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), BasicConv3d(c_in, b3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


def torchvision_key(key: str) -> str:
    """Our (kylemin) key -> the torchvision ``s3d`` key of the same tensor."""
    key = key.replace(".branch0.0.", ".branch0.")
    for ours, theirs in ((".conv_s.", ".0.0."), (".bn_s.", ".0.1."), (".conv_t.", ".1.0."), (".bn_t.", ".1.1."),
                         (".conv.", ".0."), (".bn.", ".1.")):
        key = key.replace(ours, theirs)
    if key.startswith("base."):
        key = "features." + key[len("base."):]
    return key


class _S3D(Backbone):
    """S3D trunk (``base``, kylemin's names) with the official head pooling; see the module docstring."""

    checkpoint_ignore_prefixes = ("fc.", "classifier.")

    def __init__(self, clip_len: int, fps: float, short_side: int, crop: int, mean: tuple, std: tuple,
                 init_seed: int = 0):
        super().__init__()
        for value, flag in ((clip_len, "clip_len"), (fps, "fps"), (short_side, "short_side"), (crop, "crop")):
            if value <= 0:
                raise TadInputError(self.registry_name, f"{flag} must be positive, got {value}")
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=1, feature_dim=1024, fps=fps, clip_stride=clip_len,
                                 mean=mean, std=std, short_side=short_side, crop=crop,
                                 extra=dict(pooling="avg over (2, H, W) windows, temporal stride 1, then mean"))
        self.base = nn.Sequential(
            SepConv3d(3, 64, 7, 2, 3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            BasicConv3d(64, 64),
            SepConv3d(64, 192, 3, 1, 1),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            Mixed(*MIXED["3b"]), Mixed(*MIXED["3c"]),
            nn.MaxPool3d(3, stride=2, padding=1),
            Mixed(*MIXED["4b"]), Mixed(*MIXED["4c"]), Mixed(*MIXED["4d"]), Mixed(*MIXED["4e"]), Mixed(*MIXED["4f"]),
            nn.MaxPool3d(2, stride=2),
            Mixed(*MIXED["5b"]), Mixed(*MIXED["5c"]),
        )
        init_resnet_weights(self, init_seed)

    def convert_checkpoint_keys(self, state: dict[str, object]) -> dict[str, object]:
        """torchvision-layout keys -> ours (kylemin); kylemin keys pass unchanged."""
        if not any(k.startswith("features.") for k in state):
            return state
        to_ours = {torchvision_key(k): k for k in self.state_dict()}
        return {to_ours.get(k, k): v for k, v in state.items()}

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        return [self.base(clips)]  # (B, 1024, T/8, H/32, W/32)

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        if spatial_grid is not None:
            return super().forward(clips, spatial_grid)
        fmap = self.base(clips)  # (B, 1024, T', h, w)
        if fmap.shape[2] > 1:
            fmap = (fmap[:, :, :-1] + fmap[:, :, 1:]) / 2  # the official (2, h, w) windows: (B, 1024, T' - 1, h, w)
        return fmap.mean(dim=(2, 3, 4))  # (B, 1024)


_PAPER = "S3D: Rethinking Spatiotemporal Feature Learning (Xie et al., ECCV 2018); released without gating"


@BACKBONES.register_module(name="s3d")
class S3DKylemin(_S3D):
    """kylemin/S3D Kinetics-400 weights: 64 frames at 25 fps, 224^2, RGB scaled to [-1, 1]."""

    registry_name = "s3d"
    card = BackboneCard(paper=_PAPER, input="64 x 1 @ 224^2 (25 fps)", norm="RGB [-1, 1] (x * 2 - 1)",
                        feature_dim=1024, gflops=143.8, checkpoints=("S3D_kinetics400.pt",),
                        source="kylemin/S3D README (Google Drive link)")

    def __init__(self, clip_len: int = 64, fps: float = 25.0, short_side: int = 256, crop: int = 224,
                 init_seed: int = 0):
        super().__init__(clip_len, fps, short_side, crop, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), init_seed)


@BACKBONES.register_module(name="s3d_tv")
class S3DTorchvision(_S3D):
    """torchvision's ``s3d`` Kinetics-400 weights: 128 frames at 15 fps (its clip-level accuracy
    setting), 224^2 after a 256 resize, Kinetics mean/std."""

    registry_name = "s3d_tv"
    card = BackboneCard(paper=_PAPER, input="128 x 1 @ 224^2 (15 fps)", norm=KINETICS_NORM, feature_dim=1024,
                        gflops=287.7, checkpoints=("s3d-d76dad2f.pth",),
                        source="torchvision model zoo (download.pytorch.org/models)")

    def __init__(self, clip_len: int = 128, fps: float = 15.0, short_side: int = 256, crop: int = 224,
                 init_seed: int = 0):
        super().__init__(clip_len, fps, short_side, crop, KINETICS_MEAN, KINETICS_STD, init_seed)
