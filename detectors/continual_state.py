"""Continual inference of the causal STPT: one new feature step in, the new pyramid points out.

Each layer keeps a bounded state, as in Continual 3D CNNs / Continual Transformers:

* every causal conv (input projection, positional depthwise convs, head convs per level):
  a FIFO of its last ``k - 1`` inputs (``ConvFIFO``);
* every causal attention layer: a FIFO of the keys and values of its last ``w - 1``
  steps (``KVFIFO``): a new token costs one projection and one w-key attention row;
* every level transition: the last two tokens of the finer level (causal max-pool);
* the activity head, when the model has one: its conv FIFOs at level 0.

Per input step the work is O(sum of windows), whatever the stream length; state memory
is O(levels x blocks x window x width). The outputs at a point equal those of
``CausalSTPTDetector`` run on the whole prefix (or whole video) to float rounding
(tested to 1e-5 in float32): the zero-filled conv FIFOs are the offline left padding,
and the key FIFOs start empty exactly as the offline attention masks the missing past.

Why our own FIFOs rather than the ``continual-inference`` package (co.*, by the
CoX3D / Continual Transformers authors): it imports and runs on torch 2.13, but its
single-output attention keeps a fixed-length, zero-initialised key/value memory that
takes part in the softmax (no mask; outputs for the first w - 1 steps differ from a
model that attends to fewer keys) and its offline counterpart is torch's dense
MultiheadAttention over fixed windows, not our masked, blocked causal window attention
with fused qkv. Matching its layers would mean retraining with its modules; the FIFOs
for our layers are a few lines each.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvFIFO", "KVFIFO", "PointOutput", "ContinualSTPT"]


class ConvFIFO:
    """Step-by-step causal ``conv`` (padding=0): keeps the last ``k - 1`` inputs, zero at start."""

    def __init__(self, conv: nn.Conv1d):
        self.conv = conv
        self.buffer: torch.Tensor | None = None  # (B, C_in, k - 1)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in) -> (B, C_out)."""
        k = self.conv.kernel_size[0]
        if self.buffer is None:
            self.buffer = x.new_zeros(x.shape[0], x.shape[1], k - 1)
        window = torch.cat([self.buffer, x[:, :, None]], dim=2)  # (B, C_in, k)
        self.buffer = window[:, :, 1:]
        return self.conv(window)[:, :, 0]


class KVFIFO:
    """Keys and values of the last ``window - 1`` steps of one attention layer (empty at start)."""

    def __init__(self, attn, window: int):
        self.attn = attn
        self.window = window
        self.keys: torch.Tensor | None = None  # (B, H, n, d), n <= window - 1
        self.values: torch.Tensor | None = None

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, C) normalised token -> (B, 1, C) attention output (projected)."""
        q, k, v = self.attn.split(x)  # (B, H, 1, d) each
        keys = k if self.keys is None else torch.cat([self.keys, k], dim=2)  # (B, H, n + 1, d)
        values = v if self.values is None else torch.cat([self.values, v], dim=2)
        d = q.shape[-1]
        scores = torch.matmul(q, keys.transpose(-1, -2)) * (d ** -0.5)  # (B, H, 1, n + 1)
        attn = torch.softmax(scores.float(), dim=-1).to(values.dtype)
        out = torch.matmul(attn, values)  # (B, H, 1, d)
        keep = self.window - 1
        self.keys = keys[:, :, -keep:] if keep > 0 else None
        self.values = values[:, :, -keep:] if keep > 0 else None
        return self.attn.merge(out)


@dataclass
class PointOutput:
    """One new pyramid point: level, index in the level, input step ``position = index * stride``."""

    level: int
    index: int
    position: int
    stride: int
    logits: torch.Tensor  # (B, K)
    offsets: torch.Tensor  # (B, 2) distances to start and end, in strides
    activity: torch.Tensor | None = None  # (B, K) logits of the activity head (level 0 only, when the model has one)


class _BlockState:
    def __init__(self, block):
        self.block = block
        self.conv = ConvFIFO(block.conv_pe) if block.conv_pe is not None else None
        self.kv = KVFIFO(block.attn, block.attn.window_size)

    def step(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, D)
        b = self.block
        if self.conv is not None:
            x = x + self.conv.step(x[:, 0])[:, None]
        x = x + self.kv.step(b.norm1(x))
        return x + b.mlp(b.norm2(x))


class _StackState:
    """A ``CausalConvStack`` for one level."""

    def __init__(self, stack):
        self.stack = stack
        self.convs = [ConvFIFO(c) for c in stack.convs]
        self.out = ConvFIFO(stack.out)

    def step(self, x: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B, out)
        for conv, norm in zip(self.convs, self.stack.norms):
            x = F.relu(norm(conv.step(x)))
        return self.out.step(x)


class ContinualSTPT:
    """Step-by-step runner of a ``CausalSTPTDetector`` (shares its weights; eval mode).

    ``step(feat)``: feat (B, C), the feature of the next input step -> list of
    ``PointOutput``, one per level that gains a point at this step (level l gains one at
    every input step divisible by 2**l). ``reset()`` forgets the stream.
    """

    def __init__(self, model):
        self.model = model
        self.encoder = model.encoder
        self.num_levels = self.encoder.num_levels
        self.reset()

    def reset(self) -> None:
        enc = self.encoder
        self.steps = 0
        self.embed = [ConvFIFO(conv) for conv in enc.embed]
        self.blocks = [[_BlockState(block) for block in blocks] for blocks in enc.levels]
        self.cls = [_StackState(self.model.cls_head.stack) for _ in range(self.num_levels)]
        self.reg = [_StackState(self.model.reg_head.stack) for _ in range(self.num_levels)]
        head = getattr(self.model, "activity_head", None)
        self.activity = _StackState(head.stack) if head is not None else None
        self.counts = [0] * self.num_levels  # points produced per level
        self.recent: list[list[torch.Tensor]] = [[] for _ in range(self.num_levels)]  # last 2 tokens per level

    @torch.no_grad()
    def step(self, feat: torch.Tensor) -> list[PointOutput]:
        x = feat.float()  # (B, C)
        for conv, norm in zip(self.embed, self.encoder.embed_norms):
            x = F.relu(norm(conv.step(x)))  # (B, D)
        self.steps += 1
        out: list[PointOutput] = []
        token = x[:, None]  # (B, 1, D)
        level = 0
        while token is not None:
            token, point = self._level_step(level, token)
            out.append(point)
            level += 1
        return out

    def _level_step(self, level: int, token: torch.Tensor):
        for block in self.blocks[level]:
            token = block.step(token)
        index = self.counts[level]
        self.counts[level] += 1
        y = self.encoder.level_norms[level](token[:, 0])  # (B, D)
        logits = self.cls[level].step(y)  # (B, K)
        offsets = self.model.reg_head.decode(self.reg[level].step(y), level)  # (B, 2)
        stride = 2 ** level
        activity = self.activity.step(y).float() if level == 0 and self.activity is not None else None
        point = PointOutput(level, index, index * stride, stride, logits.float(), offsets.float(), activity)
        recent = self.recent[level]
        pooled = None
        if level + 1 < self.num_levels and index % 2 == 0:
            pooled = torch.stack(recent + [token], dim=0).amax(dim=0)  # causal max-pool over the last 3
        recent.append(token)
        if len(recent) > 2:
            recent.pop(0)
        return pooled, point
