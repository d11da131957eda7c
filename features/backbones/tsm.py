"""TSM (Lin, Gan & Han, ICCV 2019): temporal shift inside a 2D CNN, official key layouts.

``tsm_r50`` is the ResNet-50 TSM of mit-han-lab/temporal-shift-module: torchvision's
ResNet-50 (stride on the 3x3 conv) run on every frame, with the input of ``conv1`` of
every bottleneck temporally shifted ("blockres", ``n_div`` 8): of C channels, the first
C/8 come from the next frame, the next C/8 from the previous frame (zeros at the clip
ends), the rest stay. The feature is the frame-wise global average, averaged over the
clip's frames (2048-d); the official ``new_fc`` is linear and the consensus an average,
so this is the vector the classifier sees. ``online=True`` shifts from the past only
(the first C/8 channels come from the previous frame, as the online demo does), for
streaming; the offline Kinetics weights were not trained that way.

Checkpoints load unchanged: ``TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth``
(``{"epoch", "arch", "state_dict": {"module.base_model.layer1.0.conv1.net.weight", ...,
"module.new_fc.*"}}``): ``module.`` and ``base_model.`` are stripped, ``new_fc`` dropped; the
shifted convs keep the ``.net`` of the official ``TemporalShift`` wrapper in their keys.

Test pre-processing: short side 256, centre crop 224, ImageNet mean/std on RGB [0, 1].
The released model was tested on 8 segments spread over a whole clip (TSN sampling);
a feature extractor needs fixed clips, so a clip is 8 frames every 8 at 30 fps (the
repository's ``dense_sample`` layout: 64-frame windows, ``t_stride = 64 // 8``).

``tsm_mobilenetv2_online`` is the online demo's MobileNetV2 (``online_demo/mobilenet_v2_tsm.py``,
checkpoint ``mobilenetv2_jester_online.pth.tar``, a bare state dict, keys ``features.*``,
``classifier.*``): the ten ``InvertedResidualWithShift`` blocks replace the first C/8
input channels of their branch by those of the previous frame. The demo feeds frames one
at a time with a shift buffer; here a clip of T frames is one batch with the buffer
starting at zero, which gives the same numbers. Feature: 1280-d, averaged over frames.

GFLOPs on the cards are FLOPs (2 x multiply-adds, ``torch.utils.flop_counter``) per clip.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones._layers import conv_bn
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.registry import BACKBONES

SHIFT_DIV = 8
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_IMAGENET_NORM = "ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225), RGB [0, 1]"
_SOURCE = "mit-han-lab/temporal-shift-module README (model zoo: hanlab.mit.edu / file.lzhu.me TSM checkpoints)"


def temporal_shift(x: torch.Tensor, frames: int, online: bool = False, fold_div: int = SHIFT_DIV) -> torch.Tensor:
    """Shift channel groups along time. x: (B*T, C, H, W) frame-major per clip -> same shape.

    Offline (bidirectional): channels [0, C/8) from frame t+1, [C/8, 2C/8) from frame t-1.
    Online: channels [0, C/8) from frame t-1 only. Missing neighbours are zeros.
    """
    nt, c, h, w = x.shape
    x = x.view(nt // frames, frames, c, h, w)  # (B, T, C, H, W)
    fold = c // fold_div
    out = torch.zeros_like(x)
    if online:
        out[:, 1:, :fold] = x[:, :-1, :fold]
        out[:, :, fold:] = x[:, :, fold:]
    else:
        out[:, :-1, :fold] = x[:, 1:, :fold]
        out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
        out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


class ShiftedConv(nn.Module):
    """The official ``TemporalShift`` wrapper: keys ``<name>.net.*``; shifting is done by the caller."""

    def __init__(self, net: nn.Conv2d):
        super().__init__()
        self.net = net


class Bottleneck(nn.Module):
    """torchvision Bottleneck (expansion 4, stride on conv2) with a shifted ``conv1``."""

    def __init__(self, dim_in: int, width: int, stride: int):
        super().__init__()
        self.conv1 = ShiftedConv(nn.Conv2d(dim_in, width, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        if stride != 1 or dim_in != width * 4:
            self.downsample = nn.Sequential(nn.Conv2d(dim_in, width * 4, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(width * 4))
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor, frames: int, online: bool, shifted: torch.Tensor | None = None) -> torch.Tensor:
        """``shifted``: the already shifted input of ``conv1`` (continual mode), else shifted here."""
        shifted = temporal_shift(x, frames, online) if shifted is None else shifted
        out = F.relu(conv_bn(self.conv1.net, self.bn1, shifted))
        out = F.relu(conv_bn(self.conv2, self.bn2, out))  # (B*T, width, H / stride, W / stride)
        out = conv_bn(self.conv3, self.bn3, out)
        shortcut = x if self.downsample is None else conv_bn(self.downsample[0], self.downsample[1], x)
        return F.relu(out + shortcut)


def _frames_first(clips: torch.Tensor) -> torch.Tensor:
    b, c, t, h, w = clips.shape
    return clips.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)  # (B*T, 3, H, W)


def _as_map(frames: torch.Tensor, batch: int) -> torch.Tensor:
    nt, c, h, w = frames.shape
    return frames.view(batch, nt // batch, c, h, w).permute(0, 2, 1, 3, 4)  # (B, C, T, h, w)


def _drop_prefixes(state: dict[str, object], prefix: str, ignore: tuple[str, ...]) -> dict[str, object]:
    out = {}
    for key, value in state.items():
        key = key[len(prefix):] if key.startswith(prefix) else key
        if not key.startswith(ignore):
            out[key] = value
    return out


@BACKBONES.register_module(name="tsm_r50")
class TSMResNet50(Backbone):
    """TSM-R50 feature extractor: clip (B, 3, T, H, W) -> (B, 2048).

    Args:
        online: shift from the past only (streaming); default the offline bidirectional shift.
        crop: centre crop (default 224, the official test crop).
        short_side: short side before cropping (default 256).
        clip_len: frames per clip = TSM segments (default 8).
        frame_interval: frames between sampled frames (default 8: dense 64-frame windows).
        init_seed: seed of the random init used without a checkpoint.
    """

    registry_name = "tsm_r50"
    checkpoint_ignore_prefixes = ("new_fc.", "base_model.fc.", "fc.")
    card = BackboneCard(
        paper="TSM: Temporal Shift Module for Efficient Video Understanding (Lin, Gan & Han, ICCV 2019)",
        input="8 x 8 @ 224^2", norm=_IMAGENET_NORM, feature_dim=2048, gflops=65.39,
        checkpoints=("TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",),
        source=_SOURCE, continual=("online=True: shift from the past only",),
    )

    def __init__(self, online: bool = False, crop: int = 224, short_side: int = 256, clip_len: int = 8,
                 frame_interval: int = 8, init_seed: int = 0):
        super().__init__()
        self.online = bool(online)
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=frame_interval, feature_dim=2048,
                                 mean=IMAGENET_MEAN, std=IMAGENET_STD, short_side=short_side, crop=crop,
                                 extra=dict(shift_div=SHIFT_DIV, online=self.online, place="blockres"))
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        dim_in = 64
        for stage, (depth, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
            blocks = [Bottleneck(dim_in if i == 0 else width * 4, width, (1 if stage == 0 else 2) if i == 0 else 1)
                      for i in range(depth)]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
            dim_in = width * 4
        _init_2d(self, init_seed, zero_bn_suffix="bn3")

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        batch, frames = clips.shape[0], clips.shape[2]
        x = F.relu(conv_bn(self.conv1, self.bn1, _frames_first(clips)))  # (B*T, 64, H/2, W/2)
        x = F.max_pool2d(x, 3, stride=2, padding=1)  # (B*T, 64, H/4, W/4)
        for stage in range(1, 5):
            for block in getattr(self, f"layer{stage}"):
                x = block(x, frames, self.online)  # (B*T, C_s, H/2^(s+1), W/2^(s+1))
        return [_as_map(x, batch)]  # (B, 2048, T, H/32, W/32)

    def convert_checkpoint_keys(self, state: dict[str, object]) -> dict[str, object]:
        """``base_model.*`` -> own keys; the classifier (``new_fc``) dropped."""
        return _drop_prefixes(state, "base_model.", self.checkpoint_ignore_prefixes)

    def temporal_layers(self) -> list[tuple[str, str]]:
        """(module name, shift) of every temporal shift, in forward order: the input of each ``conv1``."""
        kind = "online: C/8 from t-1" if self.online else "C/8 from t+1, C/8 from t-1"
        return [(f"layer{s}.{i}.conv1", kind) for s in range(1, 5) for i in range(len(getattr(self, f"layer{s}")))]


# ---- MobileNetV2 online (the online demo's network) -------------------------------------------
_MBV2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1))
_MBV2_SHIFT_BLOCKS = (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)  # global block indices with the online shift


def _conv_bn_relu6(dim_in: int, dim_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(dim_in, dim_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(dim_out), nn.ReLU6())


class InvertedResidual(nn.Module):
    """MobileNetV2 block; keys ``conv.0`` ... ``conv.7`` (or ``conv.0`` ... ``conv.4`` without expansion)."""

    def __init__(self, dim_in: int, dim_out: int, stride: int, expand: int, shift: bool):
        super().__init__()
        hidden = dim_in * expand
        self.residual = stride == 1 and dim_in == dim_out
        self.shift = shift
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(dim_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, dim_out, 1, bias=False), nn.BatchNorm2d(dim_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, frames: int, shifted: torch.Tensor | None = None) -> torch.Tensor:
        """``shifted``: the already shifted branch input (continual mode), else shifted here."""
        if shifted is not None:
            branch_in = shifted
        else:
            branch_in = temporal_shift(x, frames, online=True) if self.shift else x
        out = branch_in
        layers = list(self.conv)
        i = 0
        while i < len(layers):  # conv -> BN (folded) [-> ReLU6]
            out = conv_bn(layers[i], layers[i + 1], out)
            if i + 2 < len(layers) and isinstance(layers[i + 2], nn.ReLU6):
                out = F.relu6(out)
                i += 3
            else:
                i += 2
        return x + out if self.residual else out


@BACKBONES.register_module(name="tsm_mobilenetv2_online")
class TSMMobileNetV2Online(Backbone):
    """Online TSM MobileNetV2: clip (B, 3, T, H, W) -> (B, 1280), shift buffer zero at the clip start.

    Args:
        crop: centre crop (default 224).
        short_side: short side before cropping (default 256, as the online demo).
        clip_len: frames per clip (default 8).
        frame_interval: the demo keeps every 2nd camera frame (default 2).
        init_seed: seed of the random init used without a checkpoint.
    """

    registry_name = "tsm_mobilenetv2_online"
    checkpoint_ignore_prefixes = ("classifier.",)
    card = BackboneCard(
        paper="TSM: Temporal Shift Module for Efficient Video Understanding (Lin, Gan & Han, ICCV 2019), online demo",
        input="8 x 2 @ 224^2", norm=_IMAGENET_NORM, feature_dim=1280, gflops=4.79,
        checkpoints=("mobilenetv2_jester_online.pth.tar",),
        source="mit-han-lab/temporal-shift-module online_demo (hanlab18.mit.edu/projects/tsm/models/)",
        continual=("online shift from the past (10 shifted blocks)",),
    )

    def __init__(self, crop: int = 224, short_side: int = 256, clip_len: int = 8, frame_interval: int = 2,
                 init_seed: int = 0):
        super().__init__()
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=frame_interval, feature_dim=1280,
                                 mean=IMAGENET_MEAN, std=IMAGENET_STD, short_side=short_side, crop=crop,
                                 extra=dict(shift_div=SHIFT_DIV, online=True))
        features: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, stride=2)]
        dim_in, index = 32, 0
        for expand, channels, repeats, stride in _MBV2_SETTING:
            for i in range(repeats):
                features.append(InvertedResidual(dim_in, channels, stride if i == 0 else 1, expand,
                                                 shift=index in _MBV2_SHIFT_BLOCKS))
                dim_in, index = channels, index + 1
        features.append(_conv_bn_relu6(dim_in, 1280, 1))
        self.features = nn.ModuleList(features)
        _init_2d(self, init_seed, zero_bn_suffix=None)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        batch, frames = clips.shape[0], clips.shape[2]
        x = _frames_first(clips)  # (B*T, 3, H, W)
        for layer in self.features:
            if isinstance(layer, InvertedResidual):
                x = layer(x, frames)
            else:
                x = F.relu6(conv_bn(layer[0], layer[1], x))
        return [_as_map(x, batch)]  # (B, 1280, T, H/32, W/32)


def _init_2d(model: nn.Module, seed: int, zero_bn_suffix: str | None) -> None:
    """Seeded Kaiming-normal (fan-out) conv weights, unit BNs (zero for names ending ``zero_bn_suffix``)."""
    gen = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.constant_(module.weight, 0.0 if zero_bn_suffix and name.endswith(zero_bn_suffix) else 1.0)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups
            with torch.no_grad():
                module.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=gen)
