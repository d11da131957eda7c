"""GSF (Sudhakaran, Escalera & Lanz, TPAMI 2023): gate-shift-fuse on ResNet-50, official key layout.

``gsf_r50`` is swathikirans/GSF ``backbones/resnetGSFModels.py``: torchvision's ResNet-50 run
on every frame, with a GSF module between ``conv3`` and ``bn3`` of every bottleneck. GSF on
the first ``fPlane`` channels (``gsf_ch_ratio`` % of C, rounded up to even; 100 % in the
released commands) of x (B, C, T, H, W):
- gate = tanh(conv3D(relu(bn(x)))), a (3, 3, 3) conv with 2 groups giving one gate per half;
- each half splits into gated y = gate * x and residual r = x - y; the first half's y is
  shifted one frame back in time (y[t] <- y[t+1]), the second's one frame forward
  (y[t] <- y[t-1]), zeros at the clip ends;
- fuse: a 3x3 conv (``channel_conv1/2``) over the (channel, time) grid of the spatially pooled
  [y, r] gives w = sigmoid(.), and the half becomes y * w + r * (1 - w);
- the halves' channels are interleaved in pairs as the official ``view``/``permute`` does
  (new channel 2c + g holds old channel g * fPlane/4 + c), the other C - fPlane channels pass.
The feature is the per-frame global average of ``layer4`` averaged over the clip (2048-d),
the vector the official ``new_fc`` sees before the average consensus.

Released checkpoints (README, Google Drive): Something-Something-v1, 16 segments,
BNInception / InceptionV3 / ResNet50. The ResNet50 file is ``{"model_state_dict":
DataParallel(VideoModel).state_dict(), ...}`` (keys ``module.base_model.*``, ``module.new_fc.*``),
which the official ``test_models.py`` loads strictly after dropping the first key component;
it loads here unchanged. The BNInception and InceptionV3 releases are ``gsf_inception.py``.

Test pre-processing (``test_models.py`` with ``--input_size 0 --test_crops 1``): scale to
short side 256 (``input_size * 256 // 224``), centre crop 224, ImageNet mean/std on RGB [0, 1].
The release samples 16 TSN segments over a whole Something clip (~4 s at 12 fps); a feature
extractor needs fixed clips, so a clip here is 16 frames every 4 at 30 fps (our choice, stated).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones._layers import conv_bn
from tad.features.backbones._resnet2d import ResNet2DTrunk, downsample, shortcut
from tad.features.backbones.base import BackboneCard, BackboneSpec
from tad.features.backbones.tsm import IMAGENET_MEAN, IMAGENET_STD, _IMAGENET_NORM
from tad.features.registry import BACKBONES
from tad.errors import TadInputError


def gsf_planes(channels: int, ratio: float) -> int:
    """Channels GSF acts on: ``int(C * ratio / 100)`` rounded up to even, as the official code."""
    planes = int(channels * ratio / 100)
    return planes + 1 if planes % 2 else planes


class GSF(nn.Module):
    """Gate-shift-fuse on (B*T, C, H, W) frames of ``frames``-long clips; keys as the official ``GSF``.

    Args:
        channels: input channels C.
        ratio: percentage of channels GSF acts on (official ``gsf_ch_ratio``; default 100).
        gate_impl: ``"gemm"`` (default; see ``_gate_conv``) or ``"conv3d"`` (the official ``nn.Conv3d``).
    """

    def __init__(self, channels: int, ratio: float = 100.0, gate_impl: str = "gemm"):
        super().__init__()
        self.gate_impl = gate_impl
        self.fplane = planes = gsf_planes(channels, ratio)
        self.conv3D = nn.Conv3d(planes, 2, 3, padding=1, groups=2)
        self.bn = nn.BatchNorm3d(planes)
        self.channel_conv1 = nn.Conv2d(2, 1, 3, padding=1)
        self.channel_conv2 = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x_full: torch.Tensor, frames: int) -> torch.Tensor:
        nt, c, h, w = x_full.shape
        batch, planes = nt // frames, self.fplane
        x = x_full[:, :planes].reshape(batch, frames, planes, h, w).transpose(1, 2)  # (B, P, T, H, W)
        act = F.relu(self.bn(x))
        gate = torch.tanh(self.conv3D(act) if self.gate_impl == "conv3d" else
                          _gate_conv(act, self.conv3D.weight, self.conv3D.bias))  # (B, 2, T, H, W)
        halves = []
        for g, (part, fuse) in enumerate(zip(x.chunk(2, dim=1), (self.channel_conv1, self.channel_conv2))):
            y = gate[:, g:g + 1] * part  # (B, P/2, T, H, W)
            r = part - y
            y = _shift_time(y, backward=g == 0)
            pooled = torch.stack([y.mean(dim=(3, 4)), r.mean(dim=(3, 4))], dim=1)  # (B, 2, P/2, T)
            wy = torch.sigmoid(fuse(pooled))[:, 0, :, :, None, None]  # (B, P/2, T, 1, 1)
            fused = y * wy + r * (1 - wy)
            # official channel interleave: (2, P/4) -> (P/4, 2)
            halves.append(fused.view(batch, 2, planes // 4, frames, h, w).transpose(1, 2).reshape(
                batch, planes // 2, frames, h, w))
        y = torch.cat(halves, dim=1).transpose(1, 2).reshape(nt, planes, h, w)  # (B*T, P, H, W)
        return y if planes == c else torch.cat([y, x_full[:, planes:]], dim=1)


def _gate_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``conv3D`` (3x3x3, pad 1, 2 groups, one output each) as one GEMM per group plus 27 shifted adds.

    x: (B, P, T, H, W) -> (B, 2, T, H, W). oneDNN runs this one-output-per-group conv slowly on CPU:
    a layer1-sized gate (P 256, 16 x 28 x 28, one thread) took 0.70 s as ``nn.Conv3d`` and 0.059 s here.
    """
    b, planes, t, h, w = x.shape
    half = planes // 2
    outs = []
    for g in range(2):
        taps = torch.matmul(weight[g].reshape(half, 27).t().to(x.dtype),
                            x[:, g * half:(g + 1) * half].reshape(b, half, t * h * w))  # (B, 27, THW)
        taps = F.pad(taps.view(b, 27, t, h, w), (1, 1, 1, 1, 1, 1))  # (B, 27, T+2, H+2, W+2)
        out = bias[g].to(x.dtype).expand(b, t, h, w).clone()
        for k in range(27):
            kt, kh, kw = k // 9, (k // 3) % 3, k % 3
            out += taps[:, k, kt:kt + t, kh:kh + h, kw:kw + w]
        outs.append(out)
    return torch.stack(outs, dim=1)


def _shift_time(x: torch.Tensor, backward: bool) -> torch.Tensor:
    """(B, C, T, H, W): backward: out[t] = x[t+1] (last frame 0); forward: out[t] = x[t-1] (first 0)."""
    out = torch.zeros_like(x)
    if backward:
        out[:, :, :-1] = x[:, :, 1:]
    else:
        out[:, :, 1:] = x[:, :, :-1]
    return out


class GSFBottleneck(nn.Module):
    """torchvision Bottleneck (stride on conv2) with GSF between ``conv3`` and ``bn3``."""

    def __init__(self, dim_in: int, planes: int, stride: int, ratio: float, gate_impl: str):
        super().__init__()
        self.conv1 = nn.Conv2d(dim_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample(dim_in, planes * 4, stride)
        self.gsf = GSF(planes * 4, ratio, gate_impl)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        out = F.relu(conv_bn(self.conv1, self.bn1, x))
        out = F.relu(conv_bn(self.conv2, self.bn2, out))  # (B*T, planes, H / stride, W / stride)
        out = self.bn3(self.gsf(self.conv3(out), frames))
        return F.relu(out + shortcut(self, x))


@BACKBONES.register_module(name="gsf_r50")
class GSFResNet50(ResNet2DTrunk):
    """GSF-R50 feature extractor: clip (B, 3, T, H, W) -> (B, 2048).

    Args:
        gsf_ch_ratio: percentage of each block's channels GSF acts on (default 100, the released runs).
        gate_impl: the gate's 3x3x3 conv as ``"gemm"`` (default, faster on CPU) or ``"conv3d"`` (official form).
        crop: centre crop (default 224, the official test crop).
        short_side: short side before cropping (default 256).
        clip_len: frames per clip = GSF segments (default 16, as the released models).
        frame_interval: frames between sampled frames at 30 fps (default 4).
        init_seed: seed of the random init used without a checkpoint.
    """

    registry_name = "gsf_r50"
    card = BackboneCard(
        paper="Gate-Shift-Fuse for Video Action Recognition (Sudhakaran, Escalera & Lanz, TPAMI 2023)",
        input="16 x 4 @ 224^2", norm=_IMAGENET_NORM, feature_dim=2048, gflops=135.57,
        checkpoints=("gsf_resnet50_16f_sthv1.pth.tar",),
        source="swathikirans/GSF README, Google Drive (ResNet50 16 frames, Something-v1; the file as downloaded, "
               "any name)",
    )

    def __init__(self, gsf_ch_ratio: float = 100.0, gate_impl: str = "gemm", crop: int = 224, short_side: int = 256,
                 clip_len: int = 16, frame_interval: int = 4, init_seed: int = 0):
        super().__init__()
        if not 0 < gsf_ch_ratio <= 100:
            raise TadInputError("gsf_ch_ratio", f"must be in (0, 100], got {gsf_ch_ratio}")
        if gate_impl not in ("gemm", "conv3d"):
            raise TadInputError("gate_impl", f"must be 'gemm' or 'conv3d', got {gate_impl!r}")
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=frame_interval, feature_dim=2048,
                                 mean=IMAGENET_MEAN, std=IMAGENET_STD, short_side=short_side, crop=crop,
                                 extra=dict(gsf_ch_ratio=gsf_ch_ratio))

        def make_block(dim_in: int, planes: int, stride: int, _index: int) -> nn.Module:
            return GSFBottleneck(dim_in, planes, stride, gsf_ch_ratio, gate_impl)

        self._build_trunk(make_block, init_seed=init_seed)
