"""ViViT (google-research/scenic ``projects/vivit``): model 1 (unfactorised, joint space-time
attention) and model 2 (factorised encoder), in a PyTorch layout that ``tad convert-checkpoint
vivit`` writes from the released Flax checkpoints.

Contract: ``ViViT`` maps clips (B, 3, 32, 224, 224) normalised to [-1, 1] to the official
pre-logits vector (B, C): the class token after the final ``encoder_norm`` (model 1), or the
temporal transformer's class token (model 2), i.e. what scenic's ``return_prelogits=True``
returns for the released configs (``classifier='token'``, ``representation_size=None``). It
loads the ``.pth`` files of :mod:`tad.features.backbones.convert_vivit` strictly.

Architecture (scenic ``vivit/model.py``, ``baselines/vit.py``, checked by running it):
- tubelet embedding: Conv3d (2, 16, 16), stride = kernel (``patches.size = (16, 16, 2)``,
  ``temporal_encoding_config.method = '3d_conv'``); tokens flattened in (t, h, w) order;
- a zero-initialised class token prepended, then a *learned* position embedding
  (``posembed_input``, one row per token including the class token);
- pre-norm blocks (Flax LayerNorm eps 1e-6, multi-head attention with q, k and v biases,
  tanh-approximated GELU as Flax ``nn.gelu``), a final LayerNorm ``encoder_norm``;
- model 2 runs a spatial transformer (with its own class token and position table) on the
  tokens of each temporal index, then a temporal transformer over the per-index class tokens.

The blocks are VideoMAE's (:mod:`tad.features.backbones.videomae`) with ``qkv_bias='qkv'`` and
``gelu='tanh'``; attention runs through ``scaled_dot_product_attention``.

Pre-processing (scenic ``video_tfrecord_dataset`` test view of the released Kinetics configs):
32 frames every 2, short side 256, centre crop 224, RGB in [-1, 1] (``zero_centering``: mean
0.5 / std 0.5). The clip stride for TAD features (8 frames at 30 fps) is tad's choice.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.backbones.videomae import ATTN_IMPLS, LN_EPS, TUBELET, Attention, Block, PatchEmbed
from tad.features.registry import BACKBONES

PATCH = 16
MODELS = ("unfactorised", "factorised_encoder")
ZERO_CENTRED = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ViViTSize:
    width: int
    heads: int
    mlp_dim: int
    depth: int
    temporal_depth: int  # model 2 only


#: The released Kinetics configs (``configs/kinetics400/*.py``).
VIVIT_SIZES = {
    "b": ViViTSize(768, 12, 3072, 12, 4),
    "l": ViViTSize(1024, 16, 4096, 24, 24),
}


def check_clip_size(model: nn.Module, clips: torch.Tensor) -> int:
    """The batch size, or one TadInputError when clips are not (B, 3, num_frames, img_size, img_size):
    the learned position tables of ViViT/MTV fix the clip size."""
    b, _, t, h, w = clips.shape
    if (t, h, w) != (model.num_frames, model.img_size, model.img_size):
        raise TadInputError("--crop/--clip-len", f"{model.registry_name} takes clips of {model.num_frames} frames at "
                                                 f"{model.img_size}x{model.img_size} (its position tables); got {t} "
                                                 f"frames at {h}x{w} (set --backbone-option img_size=/num_frames= "
                                                 "to build another)")
    return b


def set_attention_impl(model: nn.Module, impl: str) -> None:
    """Every attention module of ``model`` (those with an ``impl``) runs 'sdpa' or 'math'."""
    if impl not in ATTN_IMPLS:
        raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {impl!r}")
    for module in model.modules():
        if isinstance(module, Attention) or hasattr(module, "impl"):
            module.impl = impl


class TokenEncoder(nn.Module):
    """scenic ``Encoder`` with its class token: prepend ``cls_token``, add ``pos_embed``, run the
    blocks, ``norm``: (B, N, C) -> (B, 1 + N, C).

    Args:
        num_tokens: N, tokens per sequence (without the class token).
        width, heads, mlp_dim, depth: the transformer's size.
        attn_impl: 'sdpa' (fused) or 'math' (softmax(QK^T)V).
    """

    def __init__(self, num_tokens: int, width: int, heads: int, mlp_dim: int, depth: int, attn_impl: str):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, width))
        self.blocks = nn.ModuleList(Block(width, heads, mlp_dim / width, attn_impl, qkv_bias="qkv", gelu="tanh")
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.cls_token.to(x.dtype).expand(x.shape[0], -1, -1), x), dim=1)  # (B, 1 + N, C)
        x = x + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class ViViT(Backbone):
    """ViViT feature extractor: (B, 3, T, S, S) -> (B, C), the official pre-logits.

    Args:
        size: 'b' or 'l' (the released widths and depths).
        model: 'unfactorised' (model 1, joint space-time attention) or 'factorised_encoder'
            (model 2); None picks the registered release's.
        img_size: input side S (224 in every release); the position tables are built for it.
        num_frames: frames per clip T (32 in every release); T / 2 tubelets.
        depth, temporal_depth, width, heads, mlp_dim: override the size (reduced models for
            tests; not a release). ``temporal_depth`` is model 2's temporal transformer.
        attn_impl: 'sdpa' (fused ``scaled_dot_product_attention``) or 'math'.
        init_seed: seed of the deterministic ``--random-init`` weights.
    """

    registry_name = "vivit"
    default_size = "b"
    default_model = "unfactorised"
    checkpoint_ignore_prefixes = ("head.",)

    def __init__(self, size: str | None = None, model: str | None = None, img_size: int = 224,
                 num_frames: int = 32, depth: int | None = None, temporal_depth: int | None = None,
                 width: int | None = None, heads: int | None = None, mlp_dim: int | None = None,
                 attn_impl: str = "sdpa", init_seed: int = 0):
        super().__init__()
        size = size or self.default_size
        model = model or self.default_model
        if size not in VIVIT_SIZES:
            raise TadInputError(self.registry_name, f"unknown size {size!r}; choose one of {sorted(VIVIT_SIZES)}")
        if model not in MODELS:
            raise TadInputError(self.registry_name, f"unknown model {model!r}; choose one of {list(MODELS)}")
        if attn_impl not in ATTN_IMPLS:
            raise TadInputError(self.registry_name, f"unknown attn_impl {attn_impl!r}; choose one of {list(ATTN_IMPLS)}")
        arch = VIVIT_SIZES[size]
        width = arch.width if width is None else width
        heads = arch.heads if heads is None else heads
        mlp_dim = arch.mlp_dim if mlp_dim is None else mlp_dim
        depth = arch.depth if depth is None else depth
        temporal_depth = arch.temporal_depth if temporal_depth is None else temporal_depth
        for name, value in (("img_size", img_size), ("num_frames", num_frames), ("depth", depth),
                            ("temporal_depth", temporal_depth), ("width", width), ("heads", heads),
                            ("mlp_dim", mlp_dim)):
            if int(value) < 1:
                raise TadInputError(self.registry_name, f"{name} must be >= 1, got {value}")
        if img_size % PATCH or num_frames % TUBELET or width % heads:
            raise TadInputError(self.registry_name, f"img_size must be a multiple of {PATCH}, num_frames of "
                                                    f"{TUBELET} and width of heads (got {img_size}, {num_frames}, "
                                                    f"{width}/{heads})")
        self.size, self.model, self.img_size, self.num_frames = size, model, img_size, num_frames
        self.grid = (num_frames // TUBELET, img_size // PATCH, img_size // PATCH)
        self.spec = BackboneSpec(clip_len=num_frames, frame_interval=2, feature_dim=width, fps=30.0, clip_stride=8,
                                 mean=ZERO_CENTRED, std=ZERO_CENTRED, short_side=256, crop=img_size,
                                 extra=dict(size=size, model=model))
        t, h, w = self.grid
        self.patch_embed = PatchEmbed(PATCH, width)
        if model == "unfactorised":
            self.encoder = TokenEncoder(t * h * w, width, heads, mlp_dim, depth, attn_impl)
        else:
            self.spatial = TokenEncoder(h * w, width, heads, mlp_dim, depth, attn_impl)
            self.temporal = TokenEncoder(t, width, heads, mlp_dim, temporal_depth, attn_impl)
        self.reset_parameters(init_seed)

    def reset_parameters(self, seed: int) -> None:
        """A deterministic init from a generator seeded with ``seed`` (trunc-normal std .02
        weights and position tables, zero biases and class tokens, unit LayerNorms)."""
        if self.patch_embed.proj.weight.is_meta:  # shapes only: nothing to draw
            return
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Conv3d)):  # in place: no temporary copy
                    module.weight.normal_(0.0, 0.02, generator=gen).clamp_(-0.04, 0.04)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                elif isinstance(module, TokenEncoder):
                    module.pos_embed.normal_(0.0, 0.02, generator=gen).clamp_(-0.04, 0.04)
                    module.cls_token.zero_()

    def set_attn_impl(self, impl: str) -> None:
        set_attention_impl(self, impl)

    def _encode(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-logits (B, C), last patch-token map (B, C, T/2, S/p, S/p) after its norm)."""
        b = check_clip_size(self, clips)
        x = self.patch_embed(clips)  # (B, C, T/2, S/p, S/p)
        c, grid = x.shape[1], x.shape[2:]
        if self.model == "unfactorised":
            x = self.encoder(x.flatten(2).transpose(1, 2))  # (B, 1 + N, C), tokens in (t, h, w) order
            return x[:, 0], x[:, 1:].transpose(1, 2).reshape(b, c, *grid)
        frames = x.flatten(3).permute(0, 2, 3, 1).flatten(0, 1)  # (B * T/2, hw, C)
        frames = self.spatial(frames)  # (B * T/2, 1 + hw, C)
        patches = frames[:, 1:].reshape(b, grid[0], -1, c).permute(0, 3, 1, 2).reshape(b, c, *grid)
        x = self.temporal(frames[:, 0].reshape(b, grid[0], c))  # (B, 1 + T/2, C)
        return x[:, 0], patches

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """The last patch tokens as a map (B, C, T/2, S/p, S/p): model 1's encoder output,
        model 2's spatial transformer output (each after its final LayerNorm)."""
        return [self._encode(clips)[1]]

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        """(B, 3, T, S, S) -> the class-token pre-logits (B, C), or, with ``spatial_grid=g``,
        the patch-token map averaged over time and pooled to (B, C, g, g)."""
        feature, fmap = self._encode(clips)
        if spatial_grid is None:
            return feature  # (B, C)
        return F.adaptive_avg_pool2d(fmap.mean(dim=2), spatial_grid)  # (B, C, g, g)


_PAPER = "ViViT (Arnab et al., ICCV 2021)"
_NORM = "RGB [-1, 1] (mean 0.5 / std 0.5); short side 256, centre crop 224"


def _source(*released: str) -> str:
    files = ", ".join(f"storage.googleapis.com/scenic-bucket/vivit/{r}/checkpoint" for r in released)
    return f"`tad convert-checkpoint vivit` of scenic's Flax checkpoint ({files}; google-research/scenic projects/vivit README)"


def _register(name: str, size: str, model: str, card: BackboneCard) -> type:
    cls = type(f"ViViT_{name}", (ViViT,),
               {"registry_name": name, "default_size": size, "default_model": model, "card": card,
                "__doc__": f"ViViT-{size.upper()}/16x2 {model} (registry '{name}'); see ``ViViT`` for the options."})
    return BACKBONES.register_module(name=name, module=cls)


# GFLOPs per clip: torch.utils.flop_counter (2 FLOPs per multiply-add) on one 32 x 224^2 clip.
ViViTB16x2K400 = _register("vivit_b16x2_k400", "b", "unfactorised", BackboneCard(
    paper=_PAPER + ", model 1 (unfactorised)", input="32 x 2 @ 224^2", norm=_NORM, feature_dim=768, gflops=903.0,
    checkpoints=("vivit_b16x2_k400.pth",), source=_source("kinetics_400/vivit_base_16x2_unfactorized")))
ViViTB16x2FEK400 = _register("vivit_b16x2_fe_k400", "b", "factorised_encoder", BackboneCard(
    paper=_PAPER + ", model 2 (factorised encoder)", input="32 x 2 @ 224^2", norm=_NORM, feature_dim=768,
    gflops=566.7, checkpoints=("vivit_b16x2_fe_k400.pth",), source=_source("kinetics_400/vivit_base_16x2_fe")))
ViViTL16x2FEK400 = _register("vivit_l16x2_fe_k400", "l", "factorised_encoder", BackboneCard(
    paper=_PAPER + ", model 2 (factorised encoder)", input="32 x 2 @ 224^2", norm=_NORM, feature_dim=1024,
    gflops=1984.9, checkpoints=("vivit_l16x2_fe_k400.pth",),
    source=_source("kinetics_400/vivit_large_16x2_fe", "kinetics_600/vivit_large_16x2_fe",
                   "epic_kitchens/vivit_large_16x2_fe") + "; K600: the same model; EPIC-Kitchens: 4 temporal blocks and 32 frames every 1, "
    "`--backbone-option temporal_depth=4 --frame-interval 1`"))
