"""RSANet-R50 (Kim, Kwon et al., NeurIPS 2021): relational self-attention in a ResNet-50, official keys.

``rsa_r50`` is KimManjin/RSA ``ops/ResNet.py`` + ``ops/rsa.py`` as its test scripts build it:
a ResNet-50 written with Conv3d (stem (1, 7, 7), every 3x3 conv (1, 3, 3), so frames run
independently; 5-D weights in the checkpoint) in which the 3x3 conv (``conv2``) of blocks
layer1.2, layer2.1/3, layer3.1/3/5 and layer4.1 is an RSA module (``nh`` 8 heads,
kernel (5, 7, 7), ``kernel_type`` = ``feat_type`` = ``VplusR``, dv = dk = dd = C / 8):
- ``projection`` (1x1x1) gives queries q (nh x dk), keys k (dk) and values v (dv); q (per head),
  k and v are L2-normalised over channels (eps 1e-6 inside the root);
- relational kernel: ``H1`` (grouped conv over the (5, 7, 7) context of k, dk -> dk*dd) plus
  the learnt basic kernel ``P1`` (dk, dd), contracted with q: (nh, dd) per position;
- relational feature: ``H2`` maps each value channel's context to dd numbers, ``G`` to dv
  numbers (+ the identity ``I``); their product over value channels gives (dv, dd);
- out[c = v * nh + h] = sum_d kernel[h, d] * feature[v, d] (the official channel order).
The feature is ``layer4`` averaged over T, H and W (2048-d), the vector the official
``new_fc`` (a 1x1 Conv1d) sees per frame before the average over frames.

Checkpoints: ``net_runs/RSA_R50_SSV1_16frames/resnet_rgb_model_best.pth.tar`` and
``RSA_R50_SSV2_16frames`` in the repository (README table), ``{"epoch", "arch", "state_dict":
DataParallel(TSN).state_dict(), "best_prec1", ...}`` with keys ``module.base_model.*`` and
``module.new_fc.*``; they load unchanged.

Test pre-processing (``main.py`` validation): frames resized to 240 x 320 (``GroupScale``),
centre crop 224, ImageNet mean/std on RGB [0, 1]; 16 segments. Here: short side 240 (the
240 x 320 of 4:3 video), centre crop 224, a clip of 16 frames every 4 at 30 fps (our choice).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones._layers import conv_bn
from tad.features.backbones._resnet2d import FrameConv3d, ResNet2DTrunk, downsample, shortcut
from tad.features.backbones.base import BackboneCard, BackboneSpec
from tad.features.backbones.tsm import IMAGENET_MEAN, IMAGENET_STD, _IMAGENET_NORM
from tad.features.registry import BACKBONES

#: Blocks whose 3x3 conv is RSA, per stage (official ``-pos "[[2],[1,3],[1,3,5],[1]]"``).
RSA_POSITIONS = ((2,), (1, 3), (1, 3, 5), (1,))
RSA_HEADS = 8
RSA_KERNEL = (5, 7, 7)


def _l2norm(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x / (x.pow(2).sum(dim=dim, keepdim=True) + 1e-6).sqrt()


class RelationalSelfAttention(nn.Module):
    """RSA (``VplusR`` kernel and feature) on (B*T, C, H, W) frames; keys as the official ``RSA``.

    Args:
        channels: input = output channels C.
        heads: attention heads nh (default 8); dv = dk = dd = C / nh.
        kernel: (t, h, w) context size (default (5, 7, 7)).
    """

    def __init__(self, channels: int, heads: int = RSA_HEADS, kernel: tuple[int, int, int] = RSA_KERNEL):
        super().__init__()
        self.heads, self.dim = heads, channels // heads
        d = self.dim
        pad = tuple(k // 2 for k in kernel)
        self.projection = nn.Conv3d(channels, heads * d + d + d, 1, bias=False)
        self.P1 = nn.Parameter(torch.zeros(1, d, d))
        self.H1 = nn.Conv3d(d, d * d, kernel, padding=pad, groups=d, bias=False)
        self.H2 = nn.Conv3d(1, d, kernel, padding=pad, bias=False)
        self.G = nn.Conv3d(1, d, kernel, padding=pad, bias=False)
        self.I = nn.Parameter(torch.eye(d).unsqueeze(0))

    def reset_temporal(self, gen: torch.Generator | None = None) -> None:
        """The official initial basic kernel N(0, 1/(|kernel| dd)) and identity ``I``."""
        ksize = self.H2.weight[0].numel()
        with torch.no_grad():
            self.P1.normal_(0.0, (1.0 / (ksize * self.dim)) ** 0.5, generator=gen)
            self.I.copy_(torch.eye(self.dim).unsqueeze(0))

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        nt, c, h, w = x.shape
        b, nh, d = nt // frames, self.heads, self.dim
        x = x.view(b, frames, c, h, w).transpose(1, 2)  # (B, C, T, H, W)
        proj = F.conv3d(x, self.projection.weight)  # (B, nh*d + 2d, T, H, W)
        q, k, v = proj.split([nh * d, d, d], dim=1)
        n = frames * h * w
        q = _l2norm(q.reshape(b, nh, d, n), dim=2)  # (B, nh, dk, N)
        k = _l2norm(k, dim=1)
        v = _l2norm(v, dim=1)
        rel_kernel = self.H1(k).reshape(b, d, d, n) + self.P1[0, :, :, None]  # (B, dk, dd, N)
        kernel = torch.einsum("bhkn,bkdn->bhdn", q, rel_kernel)  # (B, nh, dd, N)
        ctx = F.conv3d(v.reshape(b * d, 1, frames, h, w), torch.cat([self.H2.weight, self.G.weight]),
                       padding=self.H2.padding)  # (B*dv, dd + dv, T, H, W)
        values = ctx[:, :d].reshape(b, d, d, n)  # (B, dv, dd, N)
        rel_values = ctx[:, d:].reshape(b, d, d, n) + self.I[0, :, :, None]  # (B, dv, dv2, N)
        feature = torch.einsum("bvwn,bvdn->bwdn", rel_values, values)  # (B, dv2, dd, N)
        out = torch.einsum("bhdn,bwdn->bwhn", kernel, feature)  # (B, dv2, nh, N): channel v2 * nh + h
        return out.reshape(b, c, frames, h, w).transpose(1, 2).reshape(nt, c, h, w)


class RSABottleneck(nn.Module):
    """The official Conv3d Bottleneck: 1x1x1 -> (1, 3, 3) conv or RSA -> 1x1x1, BN after each."""

    def __init__(self, dim_in: int, planes: int, stride: int, use_rsa: bool):
        super().__init__()
        self.conv1 = FrameConv3d(dim_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.use_rsa = use_rsa
        if use_rsa:  # never on a strided block in the released layout
            self.conv2 = RelationalSelfAttention(planes)
        else:
            self.conv2 = FrameConv3d(planes, planes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                                     bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = FrameConv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample(dim_in, planes * 4, stride, conv=FrameConv3d)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        out = F.relu(conv_bn(self.conv1, self.bn1, x))
        if self.use_rsa:
            out = F.relu(self.bn2(self.conv2(out, frames)))
        else:
            out = F.relu(conv_bn(self.conv2, self.bn2, out))  # (B*T, planes, H / stride, W / stride)
        out = conv_bn(self.conv3, self.bn3, out)
        return F.relu(out + shortcut(self, x))


@BACKBONES.register_module(name="rsa_r50")
class RSAResNet50(ResNet2DTrunk):
    """RSANet-R50 feature extractor: clip (B, 3, T, H, W) -> (B, 2048).

    Args:
        crop: centre crop (default 224, the official test crop).
        short_side: short side before cropping (default 240: the official 240 x 320 resize of 4:3 frames).
        clip_len: frames per clip (default 16, as the released models).
        frame_interval: frames between sampled frames at 30 fps (default 4).
        init_seed: seed of the random init used without a checkpoint.
    """

    registry_name = "rsa_r50"
    card = BackboneCard(
        paper="Relational Self-Attention: What's Missing in Attention for Video Understanding (Kim, Kwon et al., "
              "NeurIPS 2021)",
        input="16 x 4 @ 224^2", norm=_IMAGENET_NORM + "; frames 240 x 320 (short side 240), centre crop 224",
        feature_dim=2048, gflops=143.54,
        checkpoints=("resnet_rgb_model_best.pth.tar",),
        source="KimManjin/RSA repository net_runs/RSA_R50_SSV1_16frames/ and RSA_R50_SSV2_16frames/ (README table)",
    )

    def __init__(self, crop: int = 224, short_side: int = 240, clip_len: int = 16, frame_interval: int = 4,
                 init_seed: int = 0):
        super().__init__()
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=frame_interval, feature_dim=2048,
                                 mean=IMAGENET_MEAN, std=IMAGENET_STD, short_side=short_side, crop=crop,
                                 extra=dict(rsa_positions=RSA_POSITIONS, heads=RSA_HEADS, kernel=RSA_KERNEL))
        stage_of = {64: 0, 128: 1, 256: 2, 512: 3}

        def make_block(dim_in: int, planes: int, stride: int, index: int) -> nn.Module:
            return RSABottleneck(dim_in, planes, stride, index in RSA_POSITIONS[stage_of[planes]])

        self._build_trunk(make_block, stem_conv=FrameConv3d(3, 64, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
                                                            bias=False), init_seed=init_seed)
