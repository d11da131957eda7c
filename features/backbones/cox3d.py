"""CoX3D: X3D-XS/S/M/L computed frame by frame (Hedegaard & Iosifidis, ECCV 2022), X3D's weights unchanged.

Registered as ``cox3d_xs``, ``cox3d_s``, ``cox3d_m``, ``cox3d_l``: the modules, parameter
names and checkpoints of :class:`~tad.features.backbones.x3d.X3D` (SlowFast and pytorchvideo
``.pyth`` files load unchanged), computed as a continual network
(:mod:`tad.features.backbones.continual`). Of ``X3D.temporal_layers()``:

* every temporal conv (the stem's depthwise 5x1x1, each block's depthwise 3x3x3) keeps a
  ring buffer of its last ``k - 1`` input steps and sees steps t-k+1 .. t: the kernel's
  last tap is the current step and there is no padding of the future (left zero history
  only). The residual shortcut is not delayed, so the network has no delay: the feature
  of a step depends on that step and earlier ones only, and is ready as soon as the
  step's frame arrives. (CoX3D's alternative, centred kernels with the shortcut delayed to
  match, keeps X3D's alignment but delays the output by 2 + one step per block: 28 steps
  for XS/S/M, 5.6 s for S at 6 frames per step.) X3D was trained with centred kernels, so
  the features are X3D's weights in a causal arrangement, not X3D's clip features.
* the squeeze-excitation's mean over T, H, W becomes the spatial mean of each step
  averaged over the last ``window`` steps (window = the clip length), and the head's
  global pool the same sliding mean of the pooled ``conv_5`` vectors, before ``lin_5``.

Steps are the backbone's sampled frames (``frame_interval`` apart): a window of
``clip_len`` steps covers exactly the frames of one X3D clip. Receptive field of one
feature: ``5 + 2 x blocks`` steps of convs (XS/S/M: 26 blocks, 57 steps; L: 55 blocks,
115 steps) plus the SE and head windows;
delay 0. Warm-up: before the first frame the buffers are zeros, and the window means of
the first ``window - 1`` steps average the steps seen so far.

The continual-inference package (v1.2.4, by the CoX3D authors) was examined and is not used,
although it imports and runs on torch 2.13 (checked: ``co.Conv3d`` with temporal padding
k - 1 gives our causal conv to 2e-7):

* ``co.Conv3d`` gives a zero-delay, zero-history output only with temporal padding k - 1;
  with padding 0 (no future padding) it emits nothing for k - 1 steps, and its ``forward``
  (its offline path) pads both ends, so offline extraction could not use it;
* its ``forward_steps`` loops over the steps in Python (one conv per step), so a whole
  video is not one conv over the frame sequence, as offline extraction is here;
* its state lives in module buffers: one stream per module instance, while one model here
  serves several frame phases and videos (each call would swap the state of 27-56 layers);
* its pooling (``co.AvgPool3d``/``co.AdaptiveAvgPool3d``) emits nothing until a window is
  full and strides by the window; the warm-up here averages the steps seen so far;
* the official CoX3D (``co.Residual``/``co.Delay``) delays the shortcut to the centred
  kernels, the formulation not taken here (28-step delay);
* replacing X3D's modules by ``co`` modules would lose the BN folding of ``conv_bn``.

The ring buffers here are two small functions in ``continual.py``: ``causal_temporal_conv``
and ``window_mean``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from tad.features.backbones._layers import _tensor_key, conv_bn
from tad.features.backbones.base import BackboneCard
from tad.features.backbones.continual import ContinualBackbone, WindowMean, causal_temporal_conv, window_mean
from tad.features.backbones.x3d import PRESETS, X3D, X3DTransform, _card
from tad.features.registry import BACKBONES

__all__ = ["CoX3D", "CoX3DState", "receptive_field_steps"]


@dataclass
class CoX3DState:
    """Ring buffers (module name -> (B, C, k - 1, H, W)) and sliding means of one stream."""

    window: int
    convs: dict = field(default_factory=dict)
    means: dict = field(default_factory=dict)

    def mean(self, name: str) -> WindowMean:
        if name not in self.means:
            self.means[name] = WindowMean(self.window)
        return self.means[name]


def _folded(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """BN folded into the conv (inference), as ``conv_bn`` does, cached on the conv and rebuilt
    whenever a source tensor changes; (None, None) while training."""
    if bn.training or torch.is_grad_enabled():
        return None, None
    sources = (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    key = tuple(_tensor_key(t) for t in sources) + (bn.eps,)
    cached = conv.__dict__.get("_co_folded_bn")
    if cached is None or cached[0] != key:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
        shift = bn.bias - bn.running_mean * scale
        cached = (key, conv.weight * scale.view(-1, 1, 1, 1, 1), shift)
        conv.__dict__["_co_folded_bn"] = cached
    return cached[1], cached[2]


def _squeeze_excite(se, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """x (B, C, n, H, W) scaled by sigmoid(fc2(relu(fc1(mean)))), mean (B, C, n); the 1x1x1 convs as linears."""
    hidden = F.relu(F.linear(mean.transpose(1, 2), se.fc1.weight.flatten(1), se.fc1.bias))  # (B, n, C_r)
    gate = torch.sigmoid(F.linear(hidden, se.fc2.weight.flatten(1), se.fc2.bias))  # (B, n, C)
    return x * gate.transpose(1, 2)[:, :, :, None, None]


class CoX3D(ContinualBackbone, X3D):
    """Continual X3D: frames (B, 3, n, H, W) -> one 2048-d feature per frame (``feature="lin5"``).

    Args:
        size: ``"xs"``, ``"s"``, ``"m"`` or ``"l"`` (set by the registered names).
        feature: ``"lin5"`` (2048, default), ``"conv5"`` (432) or ``"s5"`` (192).
        crop: centre crop; default the official test crop of ``size``.
        short_side: short side before cropping; default equal to ``crop``.
        init_seed: seed of the random init used without a checkpoint.
    """

    def __init__(self, size: str = "s", feature: str = "lin5", crop: int | None = None,
                 short_side: int | None = None, init_seed: int = 0):
        X3D.__init__(self, size, feature=feature, crop=crop, short_side=short_side, init_seed=init_seed)
        self.registry_name = f"cox3d_{size}"
        extra = dict(self.spec.extra, continual="cox3d", delay_steps=0,
                     receptive_field_steps=receptive_field_steps(self.depths))
        self.spec = type(self.spec)(**{**self.spec.to_dict(), "extra": extra})

    def init_state(self, batch: int, window: int) -> CoX3DState:
        if int(window) < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        return CoX3DState(int(window))

    def _conv(self, name: str, conv: nn.Conv3d, bn: nn.BatchNorm3d, x: torch.Tensor, state: CoX3DState):
        weight, bias = _folded(conv, bn)
        out, state.convs[name] = causal_temporal_conv(conv, x, state.convs.get(name), weight, bias)
        return out if weight is not None else bn(out)

    def _transform(self, name: str, t: X3DTransform, x: torch.Tensor, state: CoX3DState) -> torch.Tensor:
        x = F.relu(conv_bn(t.a, t.a_bn, x))  # (B, C_inner, n, H, W)
        x = self._conv(f"{name}.b", t.b, t.b_bn, x, state)  # (B, C_inner, n, H / s, W / s)
        if t.se is not None:
            x = _squeeze_excite(t.se, x, window_mean(x.mean(dim=(3, 4)), state.mean(f"{name}.se")))
        return conv_bn(t.c, t.c_bn, F.silu(x))  # (B, C_out, n, H / s, W / s)

    def forward_steps(self, frames: torch.Tensor, state: CoX3DState) -> torch.Tensor:
        stem = self.s1.pathway0_stem
        x = stem.conv_xy(frames)  # (B, 24, n, H/2, W/2)
        x = F.relu(self._conv("s1.pathway0_stem.conv", stem.conv, stem.bn, x, state))
        for stage in range(2, 6):
            for i in range(self.depths[stage - 2]):
                name = f"s{stage}.pathway0_res{i}"
                block = self.get_submodule(name)
                shortcut = x if block.branch1 is None else conv_bn(block.branch1, block.branch1_bn, x)
                x = torch.relu(shortcut + self._transform(f"{name}.branch2", block.branch2, x, state))
        if self.feature == "s5":
            return window_mean(x.mean(dim=(3, 4)), state.mean("head.avg_pool"))  # (B, 192, n)
        x = F.relu(conv_bn(self.head.conv_5, self.head.conv_5_bn, x))  # (B, 432, n, h, w)
        pooled = window_mean(x.mean(dim=(3, 4)), state.mean("head.avg_pool"))  # (B, 432, n)
        if self.feature == "conv5":
            return pooled
        return F.relu(self.head.lin_5(pooled[:, :, :, None, None]))[:, :, :, 0, 0]  # (B, 2048, n)


def receptive_field_steps(depths: tuple[int, ...]) -> int:
    """Steps of the temporal convs' receptive field: the stem's 5 taps plus 2 more per block."""
    return 1 + 4 + 2 * sum(depths)


def _co_card(size: str) -> BackboneCard:
    base = _card(size)
    clip_len, interval, crop, depth_factor, _ = PRESETS[size]
    import math

    blocks = sum(int(math.ceil(depth_factor * n)) for n in (1, 2, 5, 3))
    rf = 5 + 2 * blocks
    return BackboneCard(
        paper="Continual 3D CNNs (Hedegaard & Iosifidis, ECCV 2022) on X3D (Feichtenhofer, CVPR 2020)",
        input=f"1 frame per step, every {interval} @ {crop}^2; feature = mean of the last {clip_len} steps",
        norm=base.norm, feature_dim=base.feature_dim, gflops=None, checkpoints=base.checkpoints,
        source=base.source,
        continual=(f"continual mode (frame by frame, ring buffers, no future padding): receptive field "
                   f"{rf} steps of convs + {clip_len}-step SE/head windows, delay 0",),
    )


def _register(size: str) -> type[CoX3D]:
    def __init__(self, feature: str = "lin5", crop: int | None = None, short_side: int | None = None,
                 init_seed: int = 0):
        CoX3D.__init__(self, size, feature=feature, crop=crop, short_side=short_side, init_seed=init_seed)

    cls = type(f"CoX3D{size.upper()}", (CoX3D,), {"__init__": __init__, "card": _co_card(size),
                                                   "__module__": __name__,
                                                   "__doc__": f"CoX3D-{size.upper()}: see :class:`CoX3D`."})
    return BACKBONES.register_module(name=f"cox3d_{size}", module=cls)


CoX3DXS, CoX3DS, CoX3DM, CoX3DL = (_register(size) for size in PRESETS)
