"""3D ResNet-50/101 and ResNeXt-101 of Hara et al. (CVPR 2018), kenshohara/3D-ResNets-PyTorch layout.

Registered as ``resnet3d50``, ``resnet3d101`` (ResNet, bottleneck expansion 4) and
``resnext3d101`` (ResNeXt, cardinality 32, expansion 2, widths 128-1024). All: conv1
7x7x7 stride (1, 2, 2) pad 3, BN, ReLU, max-pool 3x3x3 stride 2 pad 1 (time halves too),
four stages with 3x3x3 convs (stride 2 from stage 2, in time as well), shortcut type B
(1x1x1 conv + BN where the shape changes). Clip: 16 consecutive frames, short side 112,
centre crop 112; feature = global average of the last map (2048-d), the vector the
official ``fc`` sees (the official pool is sized for 16 x 112^2, which is global there).

Two releases, with the same key names (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``downsample.0/1``, ``fc``) in a ``{"arch", "state_dict", ...}`` dict:
- ``release="2020"`` (default for ResNets): ``r3d50_K_200ep.pth``, ``r3d101_K_200ep.pth``
  (Kinetics-700; also ``*_KM_*`` etc.), saved without ``module.``; input RGB [0, 1]
  normalised with the Kinetics mean (0.4345, 0.4051, 0.3775) / std (0.2768, 0.2713, 0.2737).
- ``release="2018"``: ``resnet-50-kinetics.pth``, ``resnet-101-kinetics.pth``,
  ``resnext-101-kinetics.pth`` (Kinetics-400), saved under ``module.``; input RGB 0-255
  minus the ActivityNet mean (114.7748, 107.7354, 99.4750), no std scaling. ResNeXt-101
  exists only in this release (its stem has 64 channels).
The release sets the normalisation only; pass ``--backbone-option release=2018`` for the
older files (the weights load either way, so the release cannot be told from the keys).

GFLOPs on the cards are FLOPs (2 x multiply-adds) per clip at 16 x 112^2.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones._init_weights import init_resnet_weights
from tad.features.backbones._layers import PointwiseConv3d, conv_bn
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.registry import BACKBONES

RELEASES = {
    "2020": dict(mean=(0.4345, 0.4051, 0.3775), std=(0.2768, 0.2713, 0.2737)),
    "2018": dict(mean=(114.7748 / 255, 107.7354 / 255, 99.4750 / 255), std=(1 / 255, 1 / 255, 1 / 255)),
}
_NORMS = {"2020": "Kinetics mean (0.4345, 0.4051, 0.3775) / std (0.2768, 0.2713, 0.2737), RGB [0, 1]",
          "2018": "RGB 0-255 minus ActivityNet mean (114.77, 107.74, 99.48), no std"}
_SOURCE = ("kenshohara/3D-ResNets-PyTorch README, Google Drive (r3d*_K_200ep.pth: 2020 release; *-kinetics.pth: "
           "2018 release, load with --backbone-option release=2018)")
_PAPER = "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet? (Hara, Kataoka & Satoh, CVPR 2018)"


class Bottleneck3d(nn.Module):
    """1x1x1 -> 3x3x3 (stride, groups) -> 1x1x1, BN after each; type-B shortcut (``downsample``)."""

    def __init__(self, dim_in: int, mid: int, dim_out: int, stride: int, groups: int):
        super().__init__()
        self.conv1 = PointwiseConv3d(dim_in, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(mid, mid, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = PointwiseConv3d(mid, dim_out, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(dim_out)
        if stride != 1 or dim_in != dim_out:
            self.downsample = nn.Sequential(PointwiseConv3d(dim_in, dim_out, 1, stride=stride, bias=False),
                                            nn.BatchNorm3d(dim_out))
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(conv_bn(self.conv1, self.bn1, x))
        out = F.relu(conv_bn(self.conv2, self.bn2, out))  # (B, mid, T / s, H / s, W / s)
        out = conv_bn(self.conv3, self.bn3, out)
        shortcut = x if self.downsample is None else conv_bn(self.downsample[0], self.downsample[1], x)
        return F.relu(out + shortcut)


class ResNet3d(Backbone):
    """Hara et al. 3D ResNet/ResNeXt: clip (B, 3, 16, 112, 112) -> (B, 2048).

    Args:
        depth: 50 or 101.
        cardinality: 1 for ResNet, 32 for ResNeXt.
        release: ``"2020"`` or ``"2018"``: the normalisation the checkpoint was trained with.
        crop: centre crop (default 112, the official size).
        short_side: short side before cropping (default 112).
        init_seed: seed of the random init used without a checkpoint.
    """

    checkpoint_ignore_prefixes = ("fc.",)

    def __init__(self, depth: int = 50, cardinality: int = 1, release: str = "2020", crop: int = 112,
                 short_side: int = 112, init_seed: int = 0):
        super().__init__()
        if depth not in (50, 101):
            raise ValueError(f"depth must be 50 or 101, got {depth!r}")
        release = str(release)
        if release not in RELEASES:
            raise ValueError(f"release must be one of {', '.join(RELEASES)}, got {release!r}")
        self.release = release
        self.spec = BackboneSpec(clip_len=16, frame_interval=1, feature_dim=2048, short_side=short_side, crop=crop,
                                 extra=dict(depth=depth, cardinality=cardinality, release=release),
                                 **RELEASES[release])
        self.conv1 = nn.Conv3d(3, 64, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        blocks = (3, 4, 6, 3) if depth == 50 else (3, 4, 23, 3)
        planes = (64, 128, 256, 512) if cardinality == 1 else (128, 256, 512, 1024)
        expansion = 4 if cardinality == 1 else 2
        dim_in = 64
        for stage, (n, width) in enumerate(zip(blocks, planes)):
            mid = width if cardinality == 1 else cardinality * width // 32
            layer = [Bottleneck3d(dim_in if i == 0 else width * expansion, mid, width * expansion,
                                  (1 if stage == 0 else 2) if i == 0 else 1, cardinality) for i in range(n)]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layer))
            dim_in = width * expansion
        init_resnet_weights(self, init_seed, zero_bn_suffix="bn3")

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(conv_bn(self.conv1, self.bn1, clips))  # (B, 64, T, H/2, W/2)
        x = F.max_pool3d(x, 3, stride=2, padding=1)  # (B, 64, T/2, H/4, W/4)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        return [x]  # (B, 2048, T/16, H/32, W/32)


def _register(name: str, depth: int, cardinality: int, release: str, gflops: float,
              checkpoints: tuple[str, ...]) -> type[ResNet3d]:
    def __init__(self, release: str = release, crop: int = 112, short_side: int = 112, init_seed: int = 0):
        ResNet3d.__init__(self, depth, cardinality, release=release, crop=crop, short_side=short_side,
                          init_seed=init_seed)

    card = BackboneCard(paper=_PAPER, input="16 x 1 @ 112^2", norm=_NORMS[release], feature_dim=2048, gflops=gflops,
                        checkpoints=checkpoints, source=_SOURCE)
    cls = type(name, (ResNet3d,), {"__init__": __init__, "card": card, "registry_name": name, "__module__": __name__,
                                   "__doc__": f"{name}: see :class:`ResNet3d`."})
    return BACKBONES.register_module(name=name, module=cls)


ResNet3d50 = _register("resnet3d50", 50, 1, "2020", 20.14, ("r3d50_K_200ep.pth", "resnet-50-kinetics.pth"))
ResNet3d101 = _register("resnet3d101", 101, 1, "2020", 27.78,
                        ("r3d101_K_200ep.pth", "resnet-101-kinetics.pth"))
ResNeXt3d101 = _register("resnext3d101", 101, 32, "2018", 19.13, ("resnext-101-kinetics.pth",))
