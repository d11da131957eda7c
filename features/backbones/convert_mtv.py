"""Convert scenic's released MTV checkpoints (Flax msgpack) to a ``.pth`` that the MTV backbones
(:mod:`tad.features.backbones.mtv`) load strictly.

Contract: ``convert_mtv_checkpoint(src, dst, backbone=None)`` reads ``src`` with
:mod:`tad.features.backbones.flax_msgpack` (no JAX), maps every parameter of scenic's ``MTV``
(cross-view attention, channel merge, token classifier) to our key, reads the views, depths and
fusion layers from the names and shapes, checks the result against the backbone (``backbone`` or
the release those match) built on the meta device, and writes ``{"state_dict": ..., "meta": ...}``
atomically. ``output_projection`` is dropped; any other foreign, missing or misshapen parameter is
one ``TadInputError`` naming ``src``. Bottleneck-fusion MTVs (no released checkpoint) are refused.

Layout map (Flax -> ours; ``v`` a view, ``l`` a layer):
- ``embedding_view{v}`` -> ``views.{v}.embed``; ``cls_view{v}`` -> ``views.{v}.cls_token``;
- ``MultiviewEncoder/posembed_input_view{v}`` -> ``views.{v}.pos_embed``;
- ``MultiviewEncoder/encoderblock_{l}_view{v}/*`` -> ``views.{v}.blocks.{l}.*`` (as ViViT's blocks);
- ``MultiviewEncoder/cross_view_encoderblock_{l}/``: ``msa_ln_view{v}`` / ``msa_view{v}`` /
  ``mlp_ln_view{v}`` / ``mlp_view{v}`` -> ``views.{v}.blocks.{l}.norm1`` / ``.attn`` / ``.norm2`` /
  ``.mlp``; ``cross_attention_ln_view{v}`` -> ``fusion.{l}.norms.{v}``;
  ``cross_attention_view{q}_{kv}/{query,key,value,out}`` -> ``fusion.{l}.attn.{q}.{q,k,v,proj}``;
- ``cls_global`` and ``global_encoder/*`` -> ``global_encoder.*`` (as ViViT's encoders).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from tad.errors import TadInputError
from tad.features.backbones.convert_vivit import IGNORED, FlaxViTMapper, _dense, _leaf, conv_tubelet, write_converted
from tad.features.backbones.flax_msgpack import flatten_tree, flax_params, read_flax_checkpoint
from tad.features.backbones.mtv import PATCH, VARIANTS, VIT_SIZES

_EMBED = re.compile(r"^embedding_view(\d+)/(kernel|bias)$")
_CLS = re.compile(r"^cls_view(\d+)$")
_POS = re.compile(r"^MultiviewEncoder/posembed_input_view(\d+)/pos_embedding$")
_PLAIN = re.compile(r"^MultiviewEncoder/encoderblock_(\d+)_view(\d+)/(.+)$")
_FUSION = re.compile(r"^MultiviewEncoder/cross_view_encoderblock_(\d+)/(.+)$")
_FUSION_VIEW = {"msa_ln": "LayerNorm_0", "msa": "MultiHeadDotProductAttention_0", "mlp_ln": "LayerNorm_1",
                "mlp": "MlpBlock_0"}
_CROSS = re.compile(r"^cross_attention_view(\d+)_(\d+)/(query|key|value|out)/(kernel|bias)$")
_CROSS_LN = re.compile(r"^cross_attention_ln_view(\d+)/(scale|bias)$")
_PER_VIEW = re.compile(r"^(msa_ln|msa|mlp_ln|mlp)_view(\d+)/(.+)$")
_TORCH_QKV = {"query": "q", "key": "k", "value": "v", "out": "proj"}


def flax_to_torch(flat: dict[str, np.ndarray], src: str | Path) -> dict[str, np.ndarray]:
    """Flattened scenic MTV params ('a/b/c' -> array) -> our state dict (numpy)."""
    out = FlaxViTMapper(src, "MTV")
    for name, value in flat.items():
        value = np.asarray(value)
        if name.startswith(IGNORED):
            continue
        if m := _EMBED.match(name):
            out.put(f"views.{m.group(1)}.embed.{_leaf(m.group(2))}", conv_tubelet(value))
        elif m := _CLS.match(name):
            out.put(f"views.{m.group(1)}.cls_token", value)
        elif m := _POS.match(name):
            out.put(f"views.{m.group(1)}.pos_embed", value)
        elif m := _PLAIN.match(name):
            out.block(f"views.{m.group(2)}.blocks.{m.group(1)}", m.group(3), value, name)
        elif m := _FUSION.match(name):
            layer, rest = m.group(1), m.group(2)
            if c := _CROSS.match(rest):
                q, kind, leaf = c.group(1), c.group(3), c.group(4)
                if leaf == "kernel":
                    value = _dense(value, out_dims=1 if kind == "out" else 2)
                elif kind != "out":
                    value = value.reshape(-1)
                out.put(f"fusion.{layer}.attn.{q}.{_TORCH_QKV[kind]}.{_leaf(leaf)}", value)
            elif c := _CROSS_LN.match(rest):
                out.put(f"fusion.{layer}.norms.{c.group(1)}.{_leaf(c.group(2))}", value)
            elif c := _PER_VIEW.match(rest):
                out.block(f"views.{c.group(2)}.blocks.{layer}", f"{_FUSION_VIEW[c.group(1)]}/{c.group(3)}", value, name)
            else:
                out.unexpected.append(name)
        elif name == "cls_global":
            out.put("global_encoder.cls_token", value)
        elif name.startswith("global_encoder/"):
            out.encoder("global_encoder", name[len("global_encoder/"):], value, name)
        else:
            out.unexpected.append(name)
    return out.finish()


def infer_architecture(state: dict[str, np.ndarray], src: str | Path) -> dict:
    """``MTV`` build options (views, depth, fusion layers, global encoder, clip) from the shapes."""
    views = sorted({int(k.split(".")[1]) for k in state if k.startswith("views.")})
    if not views or "global_encoder.pos_embed" not in state:
        raise TadInputError(src, "not an MTV checkpoint: no 'embedding_view0' / 'global_encoder' parameters")
    by_width = {size.width: name for name, size in VIT_SIZES.items()}
    parts, depths = [], []
    for v in views:
        weight = state.get(f"views.{v}.embed.weight")
        if weight is None or weight.ndim != 5:
            raise TadInputError(src, f"not an MTV checkpoint: view {v} has no 5-D tubelet 'embedding_view{v}/kernel'")
        width, tubelet = int(weight.shape[0]), int(weight.shape[2])
        if width not in by_width:
            raise TadInputError(src, f"view {v} has width {width}: not a ViT size MTV builds ({sorted(by_width)})")
        parts.append(f"{by_width[width]}/{tubelet}")
        depths.append(len({k.split(".")[3] for k in state if k.startswith(f"views.{v}.blocks.")}))
    fusion = tuple(sorted({int(k.split(".")[1]) for k in state if k.startswith("fusion.")}))
    space = int(state["views.0.pos_embed"].shape[1]) - 1
    frames = int(state["views.0.cls_token"].shape[1]) * int(state["views.0.embed.weight"].shape[2])
    options = dict(views="+".join(parts), fusion_layers=fusion, img_size=int(round(space ** 0.5)) * PATCH,
                   num_frames=frames, global_depth=len({k.split(".")[2] for k in state
                                                        if k.startswith("global_encoder.blocks.")}),
                   global_mlp_dim=int(state["global_encoder.blocks.0.mlp.fc1.weight"].shape[0])
                   if "global_encoder.blocks.0.mlp.fc1.weight" in state else None)
    release_depths = [VIT_SIZES[p.split("/")[0]].depth for p in parts]
    if depths != release_depths:
        if len(set(depths)) != 1 or any(d > r for d, r in zip(depths, release_depths)):
            raise TadInputError(src, f"view depths {depths}: MTV's views keep their ViT depth ({release_depths})")
        options["depth"] = depths[0]
    return options


def release_backbone(options: dict) -> str:
    return "mtv_l_k600" if options["views"].count("+") == 3 else "mtv_b_k400"


def convert_mtv_checkpoint(src: str | Path, dst: str | Path, backbone: str | None = None) -> dict:
    """Convert ``src`` (scenic MTV Flax checkpoint file or directory) to ``dst`` (``.pth``);
    returns the meta written with it (backbone name and the build options that differ from it)."""
    from tad.features.backbones.checkpoint import match_state_dict
    from tad.features.registry import BACKBONES
    import tad.features.backbones  # noqa: F401  (registers the MTV backbones)

    flat = flatten_tree(flax_params(read_flax_checkpoint(src), src))
    if any(k == "bottleneck" or "bottleneck_linear" in k for k in flat):
        raise TadInputError(src, "an MTV with bottleneck fusion: only cross-view attention MTVs (the released ones) "
                                 "are supported")
    state = flax_to_torch(flat, src)
    options = infer_architecture(state, src)
    query = flat.get("global_encoder/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel")
    if query is not None:
        options["global_heads"] = int(np.asarray(query).shape[1])
    name = backbone or release_backbone(options)
    if name not in BACKBONES.module_dict or not name.startswith("mtv"):
        raise TadInputError("--backbone", f"{name!r} is not a registered MTV backbone")
    with torch.device("meta"):
        model = BACKBONES.build(dict(type=name, **options))
    tensors = match_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
                                for k, v in state.items()}, model, src)
    release_views, release_fusion, (g_heads, g_mlp, g_depth) = VARIANTS[model.variant]
    reference = dict(views=release_views, fusion_layers=tuple(release_fusion), img_size=224, num_frames=32,
                     global_heads=g_heads, global_mlp_dim=g_mlp, global_depth=g_depth, depth=None)
    differ = {k: v for k, v in options.items() if reference.get(k) != v}
    if "fusion_layers" in differ:
        differ["fusion_layers"] = "".join(f"{layer}," for layer in differ["fusion_layers"])  # a tuple literal
    meta = dict(converted_from="scenic MTV Flax checkpoint", source=str(Path(src).name), backbone=name, options=differ)
    write_converted(tensors, meta, dst)
    return meta
