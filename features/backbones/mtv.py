"""MTV, Multiview Transformers for Video Recognition (google-research/scenic ``projects/mtv``),
with cross-view attention, in a PyTorch layout that ``tad convert-checkpoint mtv`` writes from
the released Flax checkpoints.

Contract: ``MTV`` maps clips (B, 3, 32, 224, 224) in [-1, 1] to the official pre-logits (B, C):
the global encoder's class token after its ``encoder_norm``, C = the sum of the view widths
(MTV-B 192 + 384 + 768 = 1344). It loads the ``.pth`` files of
:mod:`tad.features.backbones.convert_mtv` strictly.

Architecture (scenic ``mtv/model.py``, ``model_type='cross_view_attention'``, merge on the
channel axis, ``classifier='token'``; checked by running it):
- view v tokenises the clip with a Conv3d tubelet (t_v, 16, 16) into (t_v, 196) tokens of
  width C_v, prepends a learned class token per tubelet time index (``cls_view{v}``, (1, t_v, 1, C_v));
- the views are aligned to the smallest temporal size t_min: view v's tokens are cut into t_min
  groups of t_v / t_min consecutive time indices, and each group is encoded separately (every
  group and view shares the weights); a learned table (1, 197, C_v) is added to every time index;
- per layer l: at the fusion layers, cross-view attention first (every view LayerNormed, then in
  descending order view v-1 attends to view v, added to view v-1); then for every view that has
  a layer l, a pre-norm ViT block (Flax LayerNorm eps 1e-6, q/k/v biases, tanh GELU);
- the global encoder takes each view's class tokens (t_v per group x t_min), tiles them (whole
  sequence repeated) to the largest t_v, concatenates the views on the channel axis, prepends
  ``cls_global`` and runs a ViT encoder (learned position table, ``encoder_norm``).

Pre-processing (released Kinetics configs): 32 frames every 2, short side 256, centre crop 224,
RGB in [-1, 1]. A clip every 8 frames at 30 fps for TAD features is tad's choice.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.backbones.videomae import ATTN_IMPLS, LN_EPS, Block
from tad.features.backbones.vivit import ZERO_CENTRED, TokenEncoder, check_clip_size, set_attention_impl
from tad.features.registry import BACKBONES

PATCH = 16


@dataclass(frozen=True)
class ViewSize:
    width: int
    heads: int
    mlp_dim: int
    depth: int


#: scenic ``mtv/config_utils.py`` (Ti, S, B, L).
VIT_SIZES = {"Ti": ViewSize(192, 3, 768, 12), "S": ViewSize(384, 6, 1536, 12),
             "B": ViewSize(768, 12, 3072, 12), "L": ViewSize(1024, 16, 4096, 24)}
#: The released variants: views 'size/tubelet frames', cross-view fusion layers, global encoder (heads, mlp, depth).
VARIANTS = {
    "b": ("Ti/8+S/4+B/2", (5, 11), (8, 3072, 12)),
    "l": ("Ti/16+S/8+B/4+L/2", (11, 23), (8, 3072, 12)),
}


def parse_views(variant: str) -> list[tuple[ViewSize, int]]:
    """'Ti/8+S/4+B/2' -> [(ViT size, tubelet frames), ...] (scenic's ``parse_view_configs``)."""
    views = []
    for item in variant.split("+"):
        size, _, frames = item.partition("/")
        if size not in VIT_SIZES or not frames.isdigit() or int(frames) < 1:
            raise TadInputError("views", f"bad view {item!r} in {variant!r}: expected SIZE/FRAMES, SIZE in {sorted(VIT_SIZES)}")
        views.append((VIT_SIZES[size], int(frames)))
    return views


class CrossAttention(nn.Module):
    """scenic ``MultiHeadAttention`` from a query view (width Cq) to a key/value view (Ckv),
    with the query view's heads and width: q (Cq -> Cq), k, v (Ckv -> Cq), proj (Cq -> Cq)."""

    def __init__(self, query_width: int, kv_width: int, heads: int, impl: str):
        super().__init__()
        self.heads, self.impl = heads, impl
        self.q = nn.Linear(query_width, query_width)
        self.k = nn.Linear(kv_width, query_width)
        self.v = nn.Linear(kv_width, query_width)
        self.proj = nn.Linear(query_width, query_width)

    def forward(self, query: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, c = query.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(b, x.shape[1], self.heads, c // self.heads).transpose(1, 2)  # (B, heads, N, d)

        q, k, v = split(self.q(query)), split(self.k(kv)), split(self.v(kv))
        if self.impl == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = ((q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))  # (B, N, Cq)


class CrossViewFusion(nn.Module):
    """One fusion layer's cross-view attention: ``norms[v]`` then, for v = V-1 .. 1,
    view v-1 += attn[v-1](norm(view v-1), norm(view v)) (all norms taken before any update)."""

    def __init__(self, widths: list[int], heads: list[int], impl: str):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(w, eps=LN_EPS) for w in widths)
        self.attn = nn.ModuleList(CrossAttention(widths[v], widths[v + 1], heads[v], impl) for v in range(len(widths) - 1))

    def forward(self, tokens: list[torch.Tensor]) -> list[torch.Tensor]:
        normed = [norm(x) for norm, x in zip(self.norms, tokens)]
        tokens = list(tokens)
        for v in range(len(tokens) - 1, 0, -1):
            tokens[v - 1] = tokens[v - 1] + self.attn[v - 1](normed[v - 1], normed[v])
        return tokens


class View(nn.Module):
    """One view: tubelet ``embed``, per-time-index ``cls_token``, ``pos_embed`` and its blocks."""

    def __init__(self, size: ViewSize, tubelet: int, time_tokens: int, space_tokens: int, depth: int, impl: str):
        super().__init__()
        self.tubelet = tubelet
        self.embed = nn.Conv3d(3, size.width, (tubelet, PATCH, PATCH), stride=(tubelet, PATCH, PATCH))
        self.cls_token = nn.Parameter(torch.zeros(1, time_tokens, 1, size.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, space_tokens + 1, size.width))
        self.blocks = nn.ModuleList(Block(size.width, size.heads, size.mlp_dim / size.width, impl, qkv_bias="qkv",
                                          gelu="tanh") for _ in range(depth))


class MTV(Backbone):
    """MTV feature extractor: (B, 3, T, S, S) -> (B, sum of view widths), the official pre-logits.

    Args:
        variant: 'b' (MTV-B: Ti/8+S/4+B/2) or 'l' (MTV-L: Ti/16+S/8+B/4+L/2).
        views: override the views ('Ti/8+S/4+B/2' syntax; reduced models for tests).
        fusion_layers: override the cross-view attention layers.
        depth: override every view's depth (reduced models; a view keeps min(depth, its own)).
        global_heads, global_mlp_dim, global_depth: override the global encoder.
        img_size, num_frames: the clip the position tables are built for (224, 32 released).
        attn_impl: 'sdpa' (fused) or 'math'.
        init_seed: seed of the deterministic ``--random-init`` weights.
    """

    registry_name = "mtv"
    default_variant = "b"
    checkpoint_ignore_prefixes = ("head.",)

    def __init__(self, variant: str | None = None, views: str | None = None, fusion_layers: tuple[int, ...] | None = None,
                 depth: int | None = None, global_heads: int | None = None, global_mlp_dim: int | None = None,
                 global_depth: int | None = None, img_size: int = 224, num_frames: int = 32, attn_impl: str = "sdpa",
                 init_seed: int = 0):
        super().__init__()
        variant = variant or self.default_variant
        if variant not in VARIANTS:
            raise TadInputError(self.registry_name, f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
        if attn_impl not in ATTN_IMPLS:
            raise TadInputError(self.registry_name, f"unknown attn_impl {attn_impl!r}; choose one of {list(ATTN_IMPLS)}")
        release_views, release_fusion, (g_heads, g_mlp, g_depth) = VARIANTS[variant]
        views = views or release_views
        fusion_layers = release_fusion if fusion_layers is None else fusion_layers
        fusion_layers = (fusion_layers,) if isinstance(fusion_layers, int) else tuple(int(v) for v in fusion_layers)
        parsed = parse_views(views)
        g_heads = g_heads if global_heads is None else global_heads
        g_mlp = g_mlp if global_mlp_dim is None else global_mlp_dim
        g_depth = g_depth if global_depth is None else global_depth
        for name, value in (("img_size", img_size), ("num_frames", num_frames), ("global_heads", g_heads),
                            ("global_mlp_dim", g_mlp), ("global_depth", g_depth), ("depth", 1 if depth is None else depth)):
            if int(value) < 1:
                raise TadInputError(self.registry_name, f"{name} must be >= 1, got {value}")
        frames = [num_frames // t for _, t in parsed]
        if img_size % PATCH or any(num_frames % t for _, t in parsed) or any(f % min(frames) for f in frames):
            raise TadInputError(self.registry_name, f"img_size must be a multiple of {PATCH} and num_frames of every "
                                                    f"tubelet, each view's time size of the smallest (got {img_size}, "
                                                    f"{num_frames}, views {views})")
        width = sum(size.width for size, _ in parsed)
        if width % g_heads:
            raise TadInputError(self.registry_name, f"global width {width} is not a multiple of global_heads {g_heads}")
        self.variant, self.views_text, self.fusion_layers = variant, views, fusion_layers
        self.img_size, self.num_frames, self.frames = img_size, num_frames, frames
        self.spec = BackboneSpec(clip_len=num_frames, frame_interval=2, feature_dim=width, fps=30.0, clip_stride=8,
                                 mean=ZERO_CENTRED, std=ZERO_CENTRED, short_side=256, crop=img_size,
                                 extra=dict(variant=variant, views=views))
        space = (img_size // PATCH) ** 2
        depths = [size.depth if depth is None else min(depth, size.depth) for size, _ in parsed]
        self.views = nn.ModuleList(View(size, t, f, space, d, attn_impl)
                                   for (size, t), f, d in zip(parsed, frames, depths))
        self.num_layers = max(depths)
        self.fusion = nn.ModuleDict({str(l): CrossViewFusion([s.width for s, _ in parsed], [s.heads for s, _ in parsed],
                                                             attn_impl)
                                     for l in fusion_layers if l < self.num_layers})
        self.global_encoder = TokenEncoder(max(frames), width, g_heads, g_mlp, g_depth, attn_impl)
        self.reset_parameters(init_seed)

    def reset_parameters(self, seed: int) -> None:
        """Deterministic init from ``seed`` (trunc-normal std .02 weights, tables and class
        tokens, zero biases, unit LayerNorms)."""
        if self.global_encoder.norm.weight.is_meta:
            return
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name.endswith("bias"):
                    param.zero_()
                elif param.dim() == 1:
                    param.fill_(1.0)
                else:  # in place: no temporary the size of the tensor (MTV-L has 875 M parameters)
                    param.normal_(0.0, 0.02, generator=gen).clamp_(-0.04, 0.04)

    def set_attn_impl(self, impl: str) -> None:
        set_attention_impl(self, impl)

    def _encode(self, clips: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b = check_clip_size(self, clips)
        groups = min(self.frames)
        tokens = []
        for view in self.views:
            x = view.embed(clips)  # (B, C, t_v, S/p, S/p)
            c, t_v = x.shape[1], x.shape[2]
            x = x.flatten(3).permute(0, 2, 3, 1)  # (B, t_v, hw, C)
            x = torch.cat((view.cls_token.to(x.dtype).expand(b, -1, -1, -1), x), dim=2)  # (B, t_v, 1 + hw, C)
            x = x + view.pos_embed.to(x.dtype).unsqueeze(1)
            tokens.append(x.reshape(b * groups, -1, c))  # (B * t_min, t_v / t_min * (1 + hw), C)
        for layer in range(self.num_layers):
            if str(layer) in self.fusion:
                tokens = self.fusion[str(layer)](tokens)
            for v, view in enumerate(self.views):
                if layer < len(view.blocks):
                    tokens[v] = view.blocks[layer](tokens[v])
        cls_tokens, maps = [], []
        largest = max(self.frames)
        for view, x, t_v in zip(self.views, tokens, self.frames):
            x = x.reshape(b, t_v, -1, x.shape[-1])  # (B, t_v, 1 + hw, C)
            cls_tokens.append(x[:, :, 0].repeat(1, largest // t_v, 1))  # (B, t_max, C): the sequence tiled
            maps.append(x[:, :, 1:])
        x = self.global_encoder(torch.cat(cls_tokens, dim=-1))  # (B, 1 + t_max, sum C)
        return x[:, 0], maps

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """Each view's last patch tokens as maps (B, C_v, t_v, S/p, S/p) (no final norm: the
        views have none in MTV)."""
        side = self.img_size // PATCH
        return [m.permute(0, 3, 1, 2).reshape(m.shape[0], m.shape[3], m.shape[1], side, side)
                for m in self._encode(clips)[1]]

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        """(B, 3, T, S, S) -> the global class token (B, C); with ``spatial_grid=g`` the views'
        patch maps averaged over time, pooled to (B, sum C_v, g, g)."""
        if spatial_grid is None:
            return self._encode(clips)[0]
        return super().forward(clips, spatial_grid)


_PAPER = "MTV (Yan et al., CVPR 2022), cross-view attention"
_NORM = "RGB [-1, 1] (mean 0.5 / std 0.5); short side 256, centre crop 224"


def _register(name: str, variant: str, card: BackboneCard) -> type:
    cls = type(f"MTV_{name}", (MTV,), {"registry_name": name, "default_variant": variant, "card": card,
                                        "__doc__": f"MTV-{variant.upper()} (registry '{name}'); see ``MTV``."})
    return BACKBONES.register_module(name=name, module=cls)


# GFLOPs per clip: torch.utils.flop_counter (2 FLOPs per multiply-add) on one 32 x 224^2 clip.
_SOURCE = ("`tad convert-checkpoint mtv` of scenic's Flax checkpoint (storage.googleapis.com/scenic-bucket/mtv/{}; "
           "google-research/scenic projects/mtv README)")
MTVB = _register("mtv_b_k400", "b", BackboneCard(
    paper=_PAPER, input="32 x 2 @ 224^2", norm=_NORM, feature_dim=1344, gflops=749.2,
    checkpoints=("mtv_b_k400.pth",), source=_SOURCE.format("mtv_b_k400") + "; mtv_b_k600/mtv_b_k700: same model"))
MTVL = _register("mtv_l_k600", "l", BackboneCard(
    paper=_PAPER, input="32 x 2 @ 224^2", norm=_NORM, feature_dim=2368, gflops=2837.5,
    checkpoints=("mtv_l_k600.pth",), source=_SOURCE.format("mtv_l_k600") + "; mtv_l_k700: same model"))
