"""The table-driven Inception trunk shared by the BN-Inception and Inception-v3 backbones.

A trunk is a ``STEM`` (a list of steps) and ``BLOCKS`` (name, branches): each block runs its
branches on the same input and concatenates their outputs in order. A step is a conv unit
``(suffix, out, (kh, kw), stride, (ph, pw))`` (a biased ``nn.Conv2d`` + BN + ReLU), a Caffe pool
``("max" | "avg", kernel, stride, pad)`` (ceil mode; average pools count the padding), or a list
of conv units run in parallel on one input and concatenated (the Inception-v3 1x3/3x1 splits).
A unit's full name is ``{block}_{suffix}`` (the stem: ``suffix``); the module names come from
the subclass's ``CONV_KEY`` / ``BN_KEY`` / ``TEMPORAL_KEY`` templates, so state-dict keys are the
release's. A temporal module (GSF) may sit between a unit's conv and its BN: ``make_temporal(unit,
channels)`` returns it or None, and it is called as ``module(x, frames)`` on (B*T, C, H, W).
"""
from __future__ import annotations

from typing import Callable, Union

import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones._layers import conv_bn
from tad.features.backbones.base import Backbone

Conv = tuple  # (unit suffix, out channels, (kh, kw), stride, (ph, pw))
Pool = tuple  # ("max" | "avg", kernel, stride, pad)
Step = Union[Conv, Pool, list]  # a list of Convs: parallel heads on one input, concatenated


def unit(name: str, out: int, k: int | tuple[int, int] = 1, stride: int = 1,
         pad: int | tuple[int, int] = 0) -> Conv:
    """A conv unit step; ``k`` and ``pad`` as an int (square) or (h, w)."""
    pair = (lambda v: v if isinstance(v, tuple) else (v, v))
    return (name, out, pair(k), stride, pair(pad))


def _step_size(step: Step, size: int, axis: int) -> int:
    """Output length along ``axis`` (0: H, 1: W) of one step on ``size`` (Caffe ceil mode for pools)."""
    if isinstance(step, list):
        return _step_size(step[0], size, axis)
    if step[0] in ("max", "avg"):
        _, k, s, p = step
        out = -(-(size + 2 * p - k) // s) + 1
        return out - 1 if (out - 1) * s >= size + p else out  # PyTorch's ceil-mode rule
    _, _, kernel, stride, pad = step
    return (size + 2 * pad[axis] - kernel[axis]) // stride + 1


def _pool(x: torch.Tensor, step: Pool) -> torch.Tensor:
    kind, k, s, p = step
    if kind == "max":
        return F.max_pool2d(x, k, s, p, ceil_mode=True)
    return F.avg_pool2d(x, k, s, p, ceil_mode=True, count_include_pad=True)


class InceptionTrunk(Backbone):
    """A ``STEM`` + ``BLOCKS`` table as modules named like the release; see the module docstring.

    ``_build_trunk(make_temporal)`` builds it; ``trunk_forward(x, frames)`` runs (B*T, 3, H, W)
    frames to (B*T, FEATURE_DIM, h, w).
    """

    STEM: list[Step] = []
    BLOCKS: list[tuple[str, list[list[Step]]]] = []
    FEATURE_DIM = 0
    CONV_KEY, BN_KEY, TEMPORAL_KEY = "{}", "{}_bn", "gsf_{}"

    def _build_trunk(self, make_temporal: Callable[[str, int], nn.Module | None]) -> None:
        self._make_temporal = make_temporal
        channels = self._build_steps("", self.STEM, 3)
        for block, branches in self.BLOCKS:
            outs = [self._build_steps(f"{block}_", branch, channels) for branch in branches]
            channels = sum(outs)
        assert channels == self.FEATURE_DIM
        del self._make_temporal

    def check_size(self, height: int, width: int) -> str | None:
        """None if (height, width) frames run through the table, else why not (branches that
        disagree after Caffe-style ceil-mode pooling, or a map shrinking below 1)."""
        for axis, size in ((0, height), (1, width)):
            for step in self.STEM:
                size = _step_size(step, size, axis)
                if size < 1:
                    return f"{height}x{width} frames shrink to nothing in the stem"
            for block, branches in self.BLOCKS:
                sizes = set()
                for branch in branches:
                    out = size
                    for step in branch:
                        out = _step_size(step, out, axis)
                    sizes.add(out)
                if len(sizes) != 1 or min(sizes) < 1:
                    return f"{height}x{width} frames do not fit block {block} (branch sizes {sorted(sizes)})"
                size = sizes.pop()
        return None

    def _build_steps(self, prefix: str, steps: list[Step], channels: int) -> int:
        for step in steps:
            if isinstance(step, list):
                return sum(self._build_unit(prefix, conv, channels) for conv in step)
            if step[0] not in ("max", "avg"):
                channels = self._build_unit(prefix, step, channels)
        return channels

    def _build_unit(self, prefix: str, conv: Conv, channels: int) -> int:
        name, out, kernel, stride, pad = conv
        full = prefix + name
        self.add_module(self.CONV_KEY.format(full), nn.Conv2d(channels, out, kernel, stride, pad, bias=True))
        self.add_module(self.BN_KEY.format(full), nn.BatchNorm2d(out))
        temporal = self._make_temporal(full, out)
        if temporal is not None:
            self.add_module(self.TEMPORAL_KEY.format(full), temporal)
        return out

    def _unit(self, name: str, x: torch.Tensor, frames: int) -> torch.Tensor:
        conv, bn = getattr(self, self.CONV_KEY.format(name)), getattr(self, self.BN_KEY.format(name))
        temporal = getattr(self, self.TEMPORAL_KEY.format(name), None)
        if temporal is None:
            return F.relu(conv_bn(conv, bn, x))
        return F.relu(bn(temporal(conv(x), frames)))

    def _run_steps(self, prefix: str, steps: list[Step], x: torch.Tensor, frames: int) -> torch.Tensor:
        for step in steps:
            if isinstance(step, list):
                return torch.cat([self._unit(prefix + conv[0], x, frames) for conv in step], dim=1)
            x = _pool(x, step) if step[0] in ("max", "avg") else self._unit(prefix + step[0], x, frames)
        return x

    def trunk_forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        problem = self.check_size(x.shape[-2], x.shape[-1])
        if problem is not None:
            raise TadInputError("--crop", problem)
        x = self._run_steps("", self.STEM, x, frames)  # (B*T, C_stem, H', W')
        for block, branches in self.BLOCKS:
            x = torch.cat([self._run_steps(f"{block}_", branch, x, frames) for branch in branches], dim=1)
        return x  # (B*T, FEATURE_DIM, h, w)
