"""TEA (Li et al., CVPR 2020): temporal excitation and aggregation on Res2Net-50, official key layout.

``tea_r50`` is Phoenix1327/tea-action-recognition ``ops/tea50_8f.py`` (``tea50_16f.py`` differs
only in its hard-coded segment count; here T comes from the clip): Res2Net-50 26w x 4s
(``Bottle2neckShift``, (3, 4, 6, 3) blocks, width ``floor(planes * 26 / 64)``, 4 scales) run on
every frame. In each block, after ``conv1``/``bn1``/ReLU:
- **ME** (motion excitation, ``me``): ``bn1(conv1(x))`` reduces C by 16; the difference of the
  next frame's depthwise-3x3 (``conv2``) map and this frame's map (zero at the last frame),
  spatially pooled, through ``conv3``/``bn3`` and sigmoid - 0.5, gives y; out = x + x * y.
- **MTA** (multiple temporal aggregation): the 4 width-groups go through the Res2Net
  hierarchy; before each 3x3 conv (and on the last, conv-free group) a depthwise temporal
  conv1d of kernel 3 (``shifts.i.conv``, zero padding) mixes frames t-1, t, t+1 per channel.
  The first block of a stage average-pools (3x3, stride) the last group instead of adding.
The feature is ``layer4`` averaged over H, W and the clip's frames (2048-d), the vector the
official ``new_fc`` sees before the average consensus.

No checkpoints are published: the README says the original models were not released
(modules renamed) and retrained models are "planned". A model trained with the official code
saves ``DataParallel(TSN)`` keys ``module.base_model.*`` / ``module.new_fc.*`` under
``state_dict``; that layout loads here unchanged.

Test pre-processing of the official ``test_models.py``: short side 256, centre crop 224,
ImageNet mean/std on RGB [0, 1]; 8 segments (``tea50_8f``). A clip here is 8 frames every 8
at 30 fps (the dense 64-frame window of TSM-style code).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones._layers import conv_bn
from tad.features.backbones._resnet2d import ResNet2DTrunk, downsample, shortcut
from tad.features.backbones.base import BackboneCard, BackboneSpec
from tad.features.backbones.tsm import IMAGENET_MEAN, IMAGENET_STD, _IMAGENET_NORM
from tad.features.registry import BACKBONES

BASE_WIDTH = 26
SCALES = 4
ME_REDUCTION = 16


class MotionExcitation(nn.Module):
    """TEA's ME module on (B*T, C, H, W); keys ``conv1``, ``bn1``, ``conv2``, ``conv3``, ``bn3``.

    Args:
        channels: C.
        reduction: channel reduction of the motion branch (default 16).
    """

    def __init__(self, channels: int, reduction: int = ME_REDUCTION):
        super().__init__()
        mid = channels // reduction
        self.conv1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False)
        self.conv3 = nn.Conv2d(mid, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        nt = x.shape[0]
        feat = conv_bn(self.conv1, self.bn1, x)  # (B*T, C/r, H, W)
        moved = self.conv2(feat)
        feat = feat.view(nt // frames, frames, *feat.shape[1:])  # (B, T, C/r, H, W)
        moved = moved.view_as(feat)
        diff = F.pad(moved[:, 1:] - feat[:, :-1], (0, 0, 0, 0, 0, 0, 0, 1))  # (B, T, C/r, H, W), last frame 0
        pooled = diff.mean(dim=(3, 4)).reshape(nt, -1, 1, 1)  # (B*T, C/r, 1, 1)
        y = torch.sigmoid(conv_bn(self.conv3, self.bn3, pooled)) - 0.5  # (B*T, C, 1, 1)
        return x + x * y


class TemporalConv(nn.Module):
    """TEA's ``ShiftModule``: depthwise conv1d over time, kernel 3, zero padding; key ``conv.weight`` (C, 1, 3).

    Args:
        channels: C.
        mode: initial kernel, as the official code: ``"shift"`` (first half from t+1, second
            half from t-1) or ``"fixed"`` (identity).
    """

    def __init__(self, channels: int, mode: str):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.mode = mode

    def reset_temporal(self, gen: torch.Generator | None = None) -> None:
        """The official initial kernel (used by random-init runs)."""
        weight = torch.zeros_like(self.conv.weight)
        half = weight.shape[0] // 2
        if self.mode == "shift":
            weight[:half, 0, 2] = 1
            weight[half:2 * half, 0, 0] = 1
            weight[2 * half:, 0, 1] = 1
        else:
            weight[:, 0, 1] = 1
        with torch.no_grad():
            self.conv.weight.copy_(weight)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        nt, c, h, w = x.shape
        x5 = x.view(nt // frames, frames, c, h, w)  # (B, T, C, H, W)
        k = self.conv.weight[:, 0].to(x.dtype)  # (C, 3): taps on t-1, t, t+1
        out = x5 * k[:, 1].view(1, 1, c, 1, 1)
        out[:, 1:] += x5[:, :-1] * k[:, 0].view(1, 1, c, 1, 1)
        out[:, :-1] += x5[:, 1:] * k[:, 2].view(1, 1, c, 1, 1)
        return out.view(nt, c, h, w)


class TEABottleneck(nn.Module):
    """Res2Net ``Bottle2neckShift`` with ME after ``conv1`` and temporal convs in the hierarchy."""

    def __init__(self, dim_in: int, planes: int, stride: int, first: bool):
        super().__init__()
        width = int(math.floor(planes * BASE_WIDTH / 64.0))
        self.width, self.first = width, first
        self.me = MotionExcitation(width * SCALES)
        self.conv1 = nn.Conv2d(dim_in, width * SCALES, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * SCALES)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
                                   for _ in range(SCALES - 1))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(SCALES - 1))
        self.shifts = nn.ModuleList([TemporalConv(width, "fixed") for _ in range(SCALES - 1)]
                                    + [TemporalConv(width, "shift")])
        self.conv3 = nn.Conv2d(width * SCALES, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample(dim_in, planes * 4, stride)
        self.stride = stride

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        out = F.relu(conv_bn(self.conv1, self.bn1, x))
        out = self.me(out, frames)  # (B*T, 4 * width, H, W)
        groups = torch.split(out, self.width, dim=1)
        outs = []
        for i in range(SCALES - 1):
            sp = groups[i] if i == 0 or self.first else sp + groups[i]
            sp = F.relu(conv_bn(self.convs[i], self.bns[i], self.shifts[i](sp, frames)))  # (B*T, width, H/s, W/s)
            outs.append(sp)
        last = self.shifts[SCALES - 1](groups[SCALES - 1], frames)
        if self.first:
            last = F.avg_pool2d(last, 3, stride=self.stride, padding=1)
        out = conv_bn(self.conv3, self.bn3, torch.cat(outs + [last], dim=1))
        return F.relu(out + shortcut(self, x))


@BACKBONES.register_module(name="tea_r50")
class TEARes2Net50(ResNet2DTrunk):
    """TEA-R50 (Res2Net-50 26w x 4s) feature extractor: clip (B, 3, T, H, W) -> (B, 2048).

    Args:
        crop: centre crop (default 224, the official test crop).
        short_side: short side before cropping (default 256).
        clip_len: frames per clip = TEA segments (default 8, ``tea50_8f``).
        frame_interval: frames between sampled frames at 30 fps (default 8).
        init_seed: seed of the random init used without a checkpoint.
    """

    registry_name = "tea_r50"
    card = BackboneCard(
        paper="TEA: Temporal Excitation and Aggregation for Action Recognition (Li et al., CVPR 2020)",
        input="8 x 8 @ 224^2", norm=_IMAGENET_NORM, feature_dim=2048, gflops=68.92,
        checkpoints=(),
        source="Phoenix1327/tea-action-recognition: code only, no checkpoints released (README 'Pre-trained "
               "Models'); a model trained with it (module.base_model.* under state_dict) loads",
    )

    def __init__(self, crop: int = 224, short_side: int = 256, clip_len: int = 8, frame_interval: int = 8,
                 init_seed: int = 0):
        super().__init__()
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=frame_interval, feature_dim=2048,
                                 mean=IMAGENET_MEAN, std=IMAGENET_STD, short_side=short_side, crop=crop,
                                 extra=dict(base_width=BASE_WIDTH, scales=SCALES))
        self._build_trunk(lambda dim_in, planes, stride, index: TEABottleneck(dim_in, planes, stride, index == 0),
                          init_seed=init_seed)
