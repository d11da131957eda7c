"""VideoMAE / VideoMAEv2 video ViTs (tubelet embedding) with the official state_dict key names.

Contract: ``VideoMAEViT`` maps normalised clips (B, 3, 16, 224, 224) to the official
``forward_features`` vector ``fc_norm(mean over tokens)`` (B, C) and loads the released
fine-tuned checkpoints of MCG-NJU/VideoMAE (ViT-S/B/L/H) and OpenGVLab/VideoMAEv2
(ViT-g, and the distilled ViT-S/B) strictly; ``head.*`` keys are ignored. The self-supervised
*pre-trained* checkpoints (``encoder.*``/``decoder.*``, no ``fc_norm``) are a different model
and are refused with the list of keys that do not fit.

Architecture (identical in both repositories' ``modeling_finetune.py``, checked by running
them): Conv3d tubelet embedding (2 x p x p, stride = kernel), a fixed 1-D sine-cosine table
added to the tokens in (t, h, w) order, pre-norm blocks (LayerNorm eps 1e-6) with
``qkv`` (no bias) + separate ``q_bias``/``v_bias`` (the k bias is zero), exact-erf GELU MLP,
no layer scale (``init_values=0``), no class token, mean pooling then ``fc_norm``.

Attention runs through ``F.scaled_dot_product_attention`` (fused kernels on GPU; on CPU the
flash/math kernel of PyTorch); ``attn_impl='math'`` keeps the official softmax(QK^T)V form.

Two sampling recipes (``recipe`` option):
- ``tad``: VideoMAEv2's ``extract_tad_feature.py`` for THUMOS14: 16 consecutive frames,
  a clip every 4 frames, the whole frame resized to 224 x 224 (no crop), RGB in [0, 1]
  *without* mean/std normalisation (the script applies none). Default for ViT-g.
- ``k400``: the official Kinetics test view: 16 frames every 4, short side 224, centre
  crop 224, ImageNet mean/std. Default for ViT-S/B/L/H.
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
TUBELET = 2
ATTN_IMPLS = ("sdpa", "math")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ViTSize:
    patch: int
    width: int
    depth: int
    heads: int
    mlp_ratio: float


#: The official ``vit_*_patch*_224`` model functions' arguments.
VIT_SIZES = {
    "s": ViTSize(16, 384, 12, 6, 4.0),
    "b": ViTSize(16, 768, 12, 12, 4.0),
    "l": ViTSize(16, 1024, 24, 16, 4.0),
    "h": ViTSize(16, 1280, 32, 16, 4.0),
    "g": ViTSize(14, 1408, 40, 16, 48 / 11),
}
RECIPES = ("tad", "k400")


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """(1, N, D) float32 table: sin at even, cos at odd channels of pos / 10000^(2 (j // 2) / D),
    computed in float64 like the official numpy code."""
    pos = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)  # (N, 1)
    j = torch.arange(dim, dtype=torch.float64)
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float().unsqueeze(0)


class PatchEmbed(nn.Module):
    """Tubelet embedding ``proj``: Conv3d (TUBELET, p, p) with the same stride."""

    def __init__(self, patch: int, width: int):
        super().__init__()
        self.proj = nn.Conv3d(3, width, (TUBELET, patch, patch), stride=(TUBELET, patch, patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # (B, C, T/2, H/p, W/p)


class Attention(nn.Module):
    """Multi-head self-attention with the official ``qkv`` / ``q_bias`` / ``v_bias`` / ``proj``.

    Args:
        qkv_bias: 'qv' (VideoMAE: separate ``q_bias``/``v_bias``, no k bias) or 'qkv' (one
            ``qkv.bias`` for q, k and v, as in Flax/scenic ViTs: ViViT).
    """

    def __init__(self, width: int, heads: int, impl: str = "sdpa", qkv_bias: str = "qv"):
        super().__init__()
        self.heads = heads
        self.impl = impl
        self.qkv = nn.Linear(width, width * 3, bias=qkv_bias == "qkv")
        if qkv_bias == "qv":
            self.q_bias = nn.Parameter(torch.zeros(width))
            self.v_bias = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = self.qkv.bias
        if bias is None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))  # k has no bias
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, d)
        if self.impl == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d)
        else:
            attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)  # (B, heads, N, N)
            out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))  # (B, N, C)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2; ``gelu`` is 'none' (exact erf, VideoMAE) or 'tanh' (Flax ``nn.gelu``)."""

    def __init__(self, width: int, hidden: int, gelu: str = "none"):
        super().__init__()
        self.gelu = gelu
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.gelu))


class Block(nn.Module):
    """Pre-norm ViT block (LayerNorm eps 1e-6); ``qkv_bias``/``gelu`` as in ``Attention``/``Mlp``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, impl: str, qkv_bias: str = "qv",
                 gelu: str = "none"):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LN_EPS)
        self.attn = Attention(width, heads, impl, qkv_bias)
        self.norm2 = nn.LayerNorm(width, eps=LN_EPS)
        self.mlp = Mlp(width, int(width * mlp_ratio), gelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoMAEViT(Backbone):
    """VideoMAE(v2) ViT feature extractor: (B, 3, T, S, S) -> (B, C), C = width.

    Args:
        size: 's', 'b', 'l', 'h' or 'g' (the official model functions).
        recipe: 'tad' (VideoMAEv2 TAD features) or 'k400' (Kinetics test view); None picks the
            size's default ('tad' for g, 'k400' otherwise).
        img_size: input side S the position table is built for (224 in every release).
        num_frames: frames per clip (16 in every release); T / 2 tubelets.
        depth, width, heads: override the size (reduced models for tests; not a release).
        attn_impl: 'sdpa' (fused ``scaled_dot_product_attention``) or 'math' (official form).
        init_seed: seed of the deterministic ``--random-init`` weights.
    """

    registry_name = "videomae_vit"
    checkpoint_ignore_prefixes = ("head.",)
    default_size = "b"

    def __init__(self, size: str | None = None, recipe: str | None = None, img_size: int = 224,
                 num_frames: int = 16, depth: int | None = None, width: int | None = None,
                 heads: int | None = None, attn_impl: str = "sdpa", init_seed: int = 0):
        super().__init__()
        size = size or self.default_size
        if size not in VIT_SIZES:
            raise TadInputError(self.registry_name, f"unknown size {size!r}; choose one of {sorted(VIT_SIZES)}")
        recipe = recipe or ("tad" if size == "g" else "k400")
        if recipe not in RECIPES:
            raise TadInputError(self.registry_name, f"unknown recipe {recipe!r}; choose one of {list(RECIPES)}")
        if attn_impl not in ATTN_IMPLS:
            raise TadInputError(self.registry_name, f"unknown attn_impl {attn_impl!r}; choose one of {list(ATTN_IMPLS)}")
        arch = VIT_SIZES[size]
        depth = arch.depth if depth is None else depth
        width = arch.width if width is None else width
        heads = arch.heads if heads is None else heads
        for name, value in (("img_size", img_size), ("num_frames", num_frames), ("depth", depth),
                            ("width", width), ("heads", heads)):
            if int(value) < 1:
                raise TadInputError(self.registry_name, f"{name} must be >= 1, got {value}")
        if img_size % arch.patch or num_frames % TUBELET or width % heads:
            raise TadInputError(self.registry_name, f"img_size must be a multiple of {arch.patch}, num_frames of "
                                                    f"{TUBELET} and width of heads (got {img_size}, {num_frames}, "
                                                    f"{width}/{heads})")
        self.size, self.recipe, self.img_size, self.num_frames = size, recipe, img_size, num_frames
        if type(self) is VideoMAEViT:  # errors name the registered size
            self.registry_name = f"videomae_vit_{size}"
        self.grid = (num_frames // TUBELET, img_size // arch.patch, img_size // arch.patch)
        if recipe == "tad":
            self.spec = BackboneSpec(clip_len=num_frames, frame_interval=1, feature_dim=width, fps=30.0,
                                     clip_stride=4, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                                     short_side=img_size, crop=img_size, resize=img_size,
                                     extra=dict(size=size, recipe=recipe))
        else:
            self.spec = BackboneSpec(clip_len=num_frames, frame_interval=4, feature_dim=width, fps=30.0,
                                     clip_stride=4, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                     short_side=img_size, crop=img_size, extra=dict(size=size, recipe=recipe))
        self.patch_embed = PatchEmbed(arch.patch, width)
        self.register_buffer("pos_embed", sinusoid_table(math.prod(self.grid), width), persistent=False)
        self.blocks = nn.ModuleList(Block(width, heads, arch.mlp_ratio, attn_impl) for _ in range(depth))
        self.fc_norm = nn.LayerNorm(width, eps=LN_EPS)
        self.reset_parameters(init_seed)

    def reset_parameters(self, seed: int) -> None:
        """The official init (trunc-normal std .02 linears, zero biases, unit LayerNorms) from
        a generator seeded with ``seed``: the same weights on every machine."""
        if self.fc_norm.weight.is_meta:  # shapes only (FLOP counts, key checks): nothing to draw
            return
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Conv3d)):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen).clamp_(-2, 2) * 0.02)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                elif isinstance(module, Attention):
                    module.q_bias.zero_()
                    module.v_bias.zero_()

    def set_attn_impl(self, impl: str) -> None:
        if impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {impl!r}")
        for module in self.modules():
            if isinstance(module, Attention):
                module.impl = impl

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """Last block's tokens as a map (B, C, T/2, S/p, S/p), before ``fc_norm``."""
        b, _, t, h, w = clips.shape
        if (t, h, w) != (self.num_frames, self.img_size, self.img_size):
            raise TadInputError("--crop/--clip-len", f"{self.registry_name} takes clips of {self.num_frames} frames at "
                                          f"{self.img_size}x{self.img_size} (its position table); got {t} frames at "
                                          f"{h}x{w} (set --backbone-option img_size=/num_frames= to build another)")
        x = self.patch_embed(clips)  # (B, C, T/2, S/p, S/p)
        grid = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)  # (B, N, C), tokens in (t, h, w) order
        x = x + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return [x.transpose(1, 2).reshape(b, -1, *grid)]  # (B, C, T/2, S/p, S/p)

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        """(B, 3, T, S, S) -> fc_norm(token mean) (B, C), or per grid cell (B, C, g, g)."""
        fmap = self.forward_maps(clips)[0]
        if spatial_grid is None:
            return self.fc_norm(fmap.mean(dim=(2, 3, 4)))  # (B, C): the official forward_features
        cells = F.adaptive_avg_pool2d(fmap.mean(dim=2), spatial_grid)  # (B, C, g, g)
        return self.fc_norm(cells.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, C, g, g)


_SOURCE_V1 = "MCG-NJU/VideoMAE MODEL_ZOO.md (Google Drive links, Kinetics-400 fine-tune 'checkpoint')"
_SOURCE_V2 = ("OpenGVLab/VideoMAEv2 docs/MODEL_ZOO.md (ViT-g: request form; distilled ViT-S/B: "
              "huggingface.co/OpenGVLab/VideoMAE2/distill)")
_PAPER = "VideoMAE (Tong et al., NeurIPS 2022); VideoMAE V2 (Wang et al., CVPR 2023)"
_K400_NORM = "ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225), RGB [0, 1]; short side 224, centre crop"
_TAD_NORM = "RGB [0, 1], no mean/std (VideoMAEv2 extract_tad_feature.py); whole frame resized to 224 x 224"


def _register(size: str, name: str, card: BackboneCard) -> type:
    cls = type(f"VideoMAEViT{size.upper()}", (VideoMAEViT,),
               {"registry_name": name, "default_size": size, "card": card,
                "__doc__": f"VideoMAE ViT-{size.upper()} (registry '{name}'); see ``VideoMAEViT`` for the options."})
    return BACKBONES.register_module(name=name, module=cls)


# GFLOPs per clip: torch.utils.flop_counter (2 FLOPs per multiply-add) on one 16 x 224^2 clip.
VideoMAEViTS = _register("s", "videomae_vit_s", BackboneCard(
    paper=_PAPER, input="16 x 4 @ 224^2", norm=_K400_NORM, feature_dim=384, gflops=113.8,
    checkpoints=("vit_s_k710_dl_from_giant.pth", "VideoMAE ViT-S K400 fine-tune checkpoint.pth"),
    source=f"{_SOURCE_V2}; {_SOURCE_V1}"))
VideoMAEViTB = _register("b", "videomae_vit_b", BackboneCard(
    paper=_PAPER, input="16 x 4 @ 224^2", norm=_K400_NORM, feature_dim=768, gflops=360.7,
    checkpoints=("vit_b_k710_dl_from_giant.pth", "VideoMAE ViT-B K400 fine-tune checkpoint.pth"),
    source=f"{_SOURCE_V2}; {_SOURCE_V1}"))
VideoMAEViTL = _register("l", "videomae_vit_l", BackboneCard(
    paper=_PAPER, input="16 x 4 @ 224^2", norm=_K400_NORM, feature_dim=1024, gflops=1193.7,
    checkpoints=("VideoMAE ViT-L K400 fine-tune checkpoint.pth",), source=_SOURCE_V1))
VideoMAEViTH = _register("h", "videomae_vit_h", BackboneCard(
    paper=_PAPER, input="16 x 4 @ 224^2", norm=_K400_NORM, feature_dim=1280, gflops=2382.0,
    checkpoints=("VideoMAE ViT-H K400 fine-tune checkpoint.pth",), source=_SOURCE_V1))
VideoMAEViTG = _register("g", "videomae_vit_g", BackboneCard(
    paper=_PAPER, input="16 x 1 @ 224^2 (TAD recipe, a clip every 4 frames)", norm=_TAD_NORM, feature_dim=1408,
    gflops=5085.6,
    checkpoints=("vit_g_hybrid_pt_1200e_k710_ft.pth", "vit_g_hybrid_pt_1200e_k400_ft.pth",
                 "vit_g_hybrid_pt_1200e_k710_it_k400_ft.pth"), source=_SOURCE_V2))
