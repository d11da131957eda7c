"""MViTv1-B 16x4 and MViTv2-S 16x4 (multiscale vision transformers) in torchvision's key layout.

Contract: ``MViT`` maps normalised clips (B, 3, 16, 224, 224) to the pre-classifier feature of
torchvision's ``mvit_v1_b`` / ``mvit_v2_s``: the class token after the final LayerNorm,
(B, 768). The released torchvision weights (``mvit_v1_b-dbeb1030.pth``,
``mvit_v2_s-ae3be167.pth``: bare state dicts) load strictly; ``head.*`` is ignored.
SlowFast's ``.pyth`` layout of the same models loads through ``mvit_slowfast.py``
(``mvit_v1_b_16x4_slowfast`` / ``mvit_v2_s_16x4_slowfast``).

Architecture (read from torchvision 0.28 ``models/video/mvit.py`` and checked against it on
seeded weights):
- patch embedding Conv3d (3, 7, 7), stride (2, 4, 4), pad (1, 3, 3); a class token in front;
- v1: learned absolute position = temporal (T') repeated over space + spatial (H'W') tiled over
  time, plus a class position;
- v2: no absolute position; decomposed relative position (t, h, w tables per block) added to
  the attention logits of the patch tokens;
- each block: LayerNorm (eps 1e-6) -> pooling attention. q / k / v are pooled per head by a
  depthwise Conv3d (no bias) and then a LayerNorm over the head dim; the class token is kept
  aside while pooling;
- v2 adds the pooled q back to the attention output on the patch tokens (residual pooling) and
  projects the channels with a Linear on the normed input when they change
  (``proj_after_attn``); v1 projects after the MLP's norm;
- the skip path max-pools (kernel stride + 1, same stride) where q is strided;
- MLP: Linear 4x -> exact GELU -> Linear (keys ``mlp.0`` / ``mlp.3``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.registry import BACKBONES

LN_EPS = 1e-6
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class StageBlock:
    heads: int
    dim_in: int
    dim_out: int
    kernel_q: tuple[int, ...]
    kernel_kv: tuple[int, ...]
    stride_q: tuple[int, ...]
    stride_kv: tuple[int, ...]


@dataclass(frozen=True)
class MViTConfig:
    blocks: tuple[StageBlock, ...]
    residual_pool: bool
    residual_with_cls: bool
    rel_pos: bool
    proj_after_attn: bool


def _blocks(heads, dims_in, dims_out, kernel_q, stride_q, stride_kv) -> tuple[StageBlock, ...]:
    return tuple(StageBlock(h, a, b, kq, (3, 3, 3), sq, skv)
                 for h, a, b, kq, sq, skv in zip(heads, dims_in, dims_out, kernel_q, stride_q, stride_kv))


_HEADS = (1, 2, 2) + (4,) * 11 + (8, 8)
_Q_DOWN = {1, 3, 14}  # blocks whose q (and the skip path) are strided (1, 2, 2)
_KV = ((1, 8, 8), (1, 4, 4), (1, 4, 4)) + ((1, 2, 2),) * 11 + ((1, 1, 1),) * 2

#: The published 16-block configurations (torchvision ``mvit_v1_b`` / ``mvit_v2_s``; Table 1 of the papers).
CONFIGS = {
    "v1_b": MViTConfig(
        blocks=_blocks(_HEADS, (96, 192, 192) + (384,) * 11 + (768,) * 2, (192, 192) + (384,) * 11 + (768,) * 3,
                       [(3, 3, 3) if i in _Q_DOWN else () for i in range(16)],
                       [(1, 2, 2) if i in _Q_DOWN else () for i in range(16)], _KV),
        residual_pool=False, residual_with_cls=True, rel_pos=False, proj_after_attn=False),
    "v2_s": MViTConfig(
        blocks=_blocks(_HEADS, (96, 96, 192, 192) + (384,) * 11 + (768,), (96, 192, 192) + (384,) * 11 + (768,) * 2,
                       [(3, 3, 3)] * 16, [(1, 2, 2) if i in _Q_DOWN else (1, 1, 1) for i in range(16)], _KV),
        residual_pool=True, residual_with_cls=False, rel_pos=True, proj_after_attn=True),
}


class TokenPool(nn.Module):
    """Pool the patch tokens of (B, heads, 1 + THW, d) over (T, H, W); the class token is kept
    aside and put back in front; then the optional LayerNorm over the last dim (``norm_act.0``)."""

    def __init__(self, pool: nn.Module, norm_dim: int | None):
        super().__init__()
        self.pool = pool
        self.norm_act = nn.Sequential(nn.LayerNorm(norm_dim, eps=LN_EPS)) if norm_dim else None

    def forward(self, x: torch.Tensor, thw: tuple[int, int, int]) -> tuple[torch.Tensor, tuple[int, int, int]]:
        b, heads, _, d = x.shape
        cls_tok, tokens = x[:, :, :1], x[:, :, 1:]
        grid = tokens.transpose(2, 3).reshape(b * heads, d, *thw)  # (B*heads, d, T, H, W)
        grid = self.pool(grid)
        new_thw = tuple(grid.shape[2:])
        tokens = grid.reshape(b, heads, d, -1).transpose(2, 3)  # (B, heads, T'H'W', d)
        x = torch.cat((cls_tok, tokens), dim=2)
        if self.norm_act is not None:
            x = self.norm_act(x)
        return x, new_thw


def _depthwise_pool(dim: int, kernel: tuple[int, ...], stride: tuple[int, ...]) -> TokenPool:
    conv = nn.Conv3d(dim, dim, kernel, stride=stride, padding=[k // 2 for k in kernel], groups=dim, bias=False)
    return TokenPool(conv, dim)


def _rel_index(q_len: int, k_len: int) -> torch.Tensor:
    """Index into a (2 max(q, k) - 1)-row table for every (query, key) pair, as in MViTv2."""
    q_ratio, k_ratio = max(k_len / q_len, 1.0), max(q_len / k_len, 1.0)
    dist = torch.arange(q_len)[:, None] * q_ratio - (torch.arange(k_len)[None, :] + (1.0 - k_len)) * k_ratio
    return dist.long()  # (q, k)


class PoolingAttention(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, block: StageBlock, cfg: MViTConfig, input_thw: tuple[int, int, int]):
        super().__init__()
        self.heads = block.heads
        self.head_dim = dim_out // block.heads
        self.dim_out = dim_out
        self.residual_pool, self.residual_with_cls = cfg.residual_pool, cfg.residual_with_cls
        self.qkv = nn.Linear(dim_in, 3 * dim_out)
        self.project = nn.Sequential(nn.Linear(dim_out, dim_out))
        if math.prod(block.kernel_q) > 1 or math.prod(block.stride_q) > 1:
            self.pool_q = _depthwise_pool(self.head_dim, block.kernel_q, block.stride_q)
        else:
            self.pool_q = None
        if math.prod(block.kernel_kv) > 1 or math.prod(block.stride_kv) > 1:
            self.pool_k = _depthwise_pool(self.head_dim, block.kernel_kv, block.stride_kv)
            self.pool_v = _depthwise_pool(self.head_dim, block.kernel_kv, block.stride_kv)
        else:
            self.pool_k = self.pool_v = None
        self.rel_pos = cfg.rel_pos
        if cfg.rel_pos:
            side = max(input_thw[1:])
            q_side = side // block.stride_q[1] if block.stride_q else side
            kv_side = side // block.stride_kv[1] if block.stride_kv else side
            spatial = 2 * max(q_side, kv_side) - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(spatial, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(spatial, self.head_dim))
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * input_thw[0] - 1, self.head_dim))

    def _rel_logits(self, q: torch.Tensor, q_thw, k_thw) -> torch.Tensor:
        """(B, heads, q_THW, k_THW) decomposed relative-position logits of the patch queries."""
        tables = []
        for table, q_len, k_len in zip((self.rel_pos_t, self.rel_pos_h, self.rel_pos_w), q_thw, k_thw):
            if table.shape[0] != 2 * max(q_len, k_len) - 1:
                raise TadInputError("--crop/--clip-len", f"MViT relative positions are built for another clip size "
                                                         f"({table.shape[0]} rows for {q_len}/{k_len} positions)")
            tables.append(table[_rel_index(q_len, k_len).to(table.device)])  # (q, k, d)
        r_t, r_h, r_w = tables
        b, heads, _, d = q.shape
        qt, qh, qw = q_thw
        kt, kh, kw = k_thw
        grid = q[:, :, 1:].reshape(b, heads, qt, qh, qw, d)
        rel_t = torch.einsum("bntyxd,tkd->bntyxk", grid, r_t)  # (B, heads, qt, qh, qw, kt)
        rel_h = torch.einsum("bntyxd,ykd->bntyxk", grid, r_h)  # (..., kh)
        rel_w = torch.einsum("bntyxd,xkd->bntyxk", grid, r_w)  # (..., kw)
        logits = rel_t[..., :, None, None] + rel_h[..., None, :, None] + rel_w[..., None, None, :]
        return logits.reshape(b, heads, qt * qh * qw, kt * kh * kw)

    def forward(self, x: torch.Tensor, thw: tuple[int, int, int]) -> tuple[torch.Tensor, tuple[int, int, int]]:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, d)
        k_thw = thw
        if self.pool_k is not None:
            k, k_thw = self.pool_k(k, thw)
            v, _ = self.pool_v(v, thw)
        q_thw = thw
        if self.pool_q is not None:
            q, q_thw = self.pool_q(q, thw)
        attn = (q * self.head_dim ** -0.5) @ k.transpose(-2, -1)  # (B, heads, Nq, Nk)
        if self.rel_pos:
            attn = attn.clone()
            attn[:, :, 1:, 1:] += self._rel_logits(q, q_thw, k_thw)
        out = attn.softmax(dim=-1) @ v  # (B, heads, Nq, d)
        if self.residual_pool:
            if self.residual_with_cls:
                out = out + q
            else:
                out = torch.cat((out[:, :, :1], out[:, :, 1:] + q[:, :, 1:]), dim=2)
        out = out.transpose(1, 2).reshape(b, -1, self.dim_out)  # (B, Nq, C_out)
        return self.project(out), q_thw


class MultiscaleBlock(nn.Module):
    def __init__(self, block: StageBlock, cfg: MViTConfig, input_thw: tuple[int, int, int]):
        super().__init__()
        self.proj_after_attn = cfg.proj_after_attn
        attn_dim = block.dim_out if cfg.proj_after_attn else block.dim_in
        self.norm1 = nn.LayerNorm(block.dim_in, eps=LN_EPS)
        self.attn = PoolingAttention(block.dim_in, attn_dim, block, cfg, input_thw)
        self.norm2 = nn.LayerNorm(attn_dim, eps=LN_EPS)
        self.mlp = nn.Sequential(nn.Linear(attn_dim, 4 * attn_dim), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(4 * attn_dim, block.dim_out), nn.Dropout(0.0))
        self.project = nn.Linear(block.dim_in, block.dim_out) if block.dim_in != block.dim_out else None
        if math.prod(block.stride_q) > 1:
            kernel = [s + 1 if s > 1 else s for s in block.stride_q]
            self.pool_skip = TokenPool(nn.MaxPool3d(kernel, stride=block.stride_q, padding=[k // 2 for k in kernel]),
                                       None)
        else:
            self.pool_skip = None

    def forward(self, x: torch.Tensor, thw: tuple[int, int, int]) -> tuple[torch.Tensor, tuple[int, int, int]]:
        normed = self.norm1(x)
        attn_out, new_thw = self.attn(normed, thw)
        skip = self.project(normed) if self.project is not None and self.proj_after_attn else x
        if self.pool_skip is not None:
            skip = self.pool_skip(skip.unsqueeze(1), thw)[0].squeeze(1)  # (B, 1 + T'H'W', C)
        x = skip + attn_out
        normed = self.norm2(x)
        skip = self.project(normed) if self.project is not None and not self.proj_after_attn else x
        return skip + self.mlp(normed), new_thw


class PositionalEncoding(nn.Module):
    """Class token (and, in v1, learned absolute positions) in torchvision's ``pos_encoding`` keys."""

    def __init__(self, dim: int, thw: tuple[int, int, int], absolute: bool):
        super().__init__()
        self.thw = thw
        self.class_token = nn.Parameter(torch.zeros(dim))
        if absolute:
            self.spatial_pos = nn.Parameter(torch.zeros(thw[1] * thw[2], dim))
            self.temporal_pos = nn.Parameter(torch.zeros(thw[0], dim))
            self.class_pos = nn.Parameter(torch.zeros(dim))
        else:
            self.spatial_pos = self.temporal_pos = self.class_pos = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, THW, C) -> (B, 1 + THW, C)."""
        x = torch.cat((self.class_token.expand(x.shape[0], 1, -1), x), dim=1)
        if self.spatial_pos is not None:
            patches = (self.temporal_pos[:, None, :] + self.spatial_pos[None, :, :]).reshape(-1, x.shape[-1])  # (THW, C)
            x = x + torch.cat((self.class_pos[None], patches), dim=0)[None]
        return x


class MViT(Backbone):
    """MViT feature extractor: (B, 3, T, S, S) -> class token after the final norm (B, 768).

    Args:
        version: 'v1_b' (MViTv1-B 16x4) or 'v2_s' (MViTv2-S 16x4).
        img_size: input side S the position tables are built for (224 in the releases).
        num_frames: frames per clip (16 in the releases).
        init_seed: seed of the deterministic ``--random-init`` weights.
    """

    registry_name = "mvit"
    checkpoint_ignore_prefixes = ("head.",)
    default_version = "v2_s"

    def __init__(self, version: str | None = None, img_size: int = 224, num_frames: int = 16, init_seed: int = 0):
        super().__init__()
        version = version or self.default_version
        if version not in CONFIGS:
            raise TadInputError(self.registry_name, f"unknown version {version!r}; choose one of {sorted(CONFIGS)}")
        if img_size < 32 or img_size % 32 or num_frames < 2 or num_frames % 2:
            raise TadInputError(self.registry_name, f"img_size must be a multiple of 32 and num_frames of 2 "
                                                    f"(got {img_size}, {num_frames})")
        cfg = CONFIGS[version]
        self.version, self.img_size, self.num_frames = version, img_size, num_frames
        if type(self) is MViT:  # errors name the registered model
            self.registry_name = f"mvit_{version}"
        self.spec = BackboneSpec(clip_len=num_frames, frame_interval=4, feature_dim=cfg.blocks[-1].dim_out, fps=30.0,
                                 clip_stride=4, mean=KINETICS_MEAN, std=KINETICS_STD, short_side=256 * img_size // 224,
                                 crop=img_size, extra=dict(version=version))
        first = cfg.blocks[0].dim_in
        self.conv_proj = nn.Conv3d(3, first, (3, 7, 7), stride=(2, 4, 4), padding=(1, 3, 3))
        thw = (num_frames // 2, img_size // 4, img_size // 4)
        self.pos_encoding = PositionalEncoding(first, thw, absolute=not cfg.rel_pos)
        self.blocks = nn.ModuleList()
        for block in cfg.blocks:
            self.blocks.append(MultiscaleBlock(block, cfg, thw))
            if block.stride_q:
                thw = tuple(size // stride for size, stride in zip(thw, block.stride_q))
        self.norm = nn.LayerNorm(cfg.blocks[-1].dim_out, eps=LN_EPS)
        self.reset_parameters(init_seed)

    def reset_parameters(self, seed: int) -> None:
        """torchvision's init (trunc-normal std .02 linears and positions, zero biases, unit norms;
        PyTorch's default for the convs) drawn from a generator seeded with ``seed``."""
        if self.norm.weight.is_meta:
            return
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen).clamp_(-2, 2) * 0.02)
                    module.bias.zero_()
                elif isinstance(module, nn.Conv3d):
                    bound = 1.0 / math.sqrt(math.prod(module.weight.shape[1:]))
                    module.weight.copy_((torch.rand(module.weight.shape, generator=gen) * 2 - 1) * bound)
                    if module.bias is not None:
                        module.bias.copy_((torch.rand(module.bias.shape, generator=gen) * 2 - 1) * bound)
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                elif isinstance(module, (PositionalEncoding, PoolingAttention)):
                    for name, param in module.named_parameters(recurse=False):
                        param.copy_(torch.randn(param.shape, generator=gen).clamp_(-2, 2) * 0.02)

    def _tokens(self, clips: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        _, _, t, h, w = clips.shape
        if (t, h, w) != (self.num_frames, self.img_size, self.img_size):
            raise TadInputError("--crop/--clip-len", f"{self.registry_name} takes clips of {self.num_frames} frames at "
                                                     f"{self.img_size}x{self.img_size} (its position tables); got {t} "
                                                     f"frames at {h}x{w} (set --backbone-option img_size=/num_frames=)")
        x = self.conv_proj(clips)  # (B, C, T/2, S/4, S/4)
        thw = tuple(x.shape[2:])
        x = self.pos_encoding(x.flatten(2).transpose(1, 2))  # (B, 1 + THW, C)
        for block in self.blocks:
            x, thw = block(x, thw)
        return self.norm(x), thw  # (B, 1 + T'H'W', 768)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """Patch tokens after the final norm as a map (B, 768, T/2, S/32, S/32)."""
        x, thw = self._tokens(clips)
        return [x[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, *thw)]

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        """Class token (B, 768), the torchvision pre-classifier feature; with ``spatial_grid``
        the patch tokens averaged over time and pooled to (B, 768, g, g)."""
        if spatial_grid is not None:
            return super().forward(clips, spatial_grid)
        return self._tokens(clips)[0][:, 0]


_PAPERS = {"v1_b": "MViT (Fan et al., ICCV 2021)", "v2_s": "MViTv2 (Li et al., CVPR 2022)"}
_NORM = "mean 0.45 / std 0.225, RGB [0, 1]; short side 256, centre crop 224 (torchvision preset)"


def _register(version: str, name: str, gflops: float, checkpoint: str) -> type:
    card = BackboneCard(paper=_PAPERS[version], input="16 x 4 @ 224^2", norm=_NORM, feature_dim=768, gflops=gflops,
                        checkpoints=(checkpoint,), source="torchvision model zoo (download.pytorch.org/models)")
    cls = type(f"MViT{version.upper()}", (MViT,), {"registry_name": name, "default_version": version, "card": card,
                                                   "__doc__": f"{card.paper} (registry '{name}'); see ``MViT``."})
    return BACKBONES.register_module(name=name, module=cls)


# GFLOPs per clip: torch.utils.flop_counter (2 FLOPs per multiply-add), one 16 x 224^2 clip.
MViTV1B = _register("v1_b", "mvit_v1_b", 141.2, "mvit_v1_b-dbeb1030.pth")
MViTV2S = _register("v2_s", "mvit_v2_s", 128.4, "mvit_v2_s-ae3be167.pth")
