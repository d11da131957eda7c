"""Convert scenic's released ViViT checkpoints (Flax msgpack) to a ``.pth`` that the ViViT
backbones (:mod:`tad.features.backbones.vivit`) load strictly.

Contract: ``convert_vivit_checkpoint(src, dst, backbone=None)`` reads ``src`` with
:mod:`tad.features.backbones.flax_msgpack` (no JAX), maps every encoder parameter of scenic's
``ViViT`` (model 1, ``Transformer``) or ``SpaceTimeViViT`` (model 2, ``SpatialTransformer`` +
``TemporalTransformer``) to our key, checks the result against the backbone (``backbone`` or
the registered release the shapes match) built on the meta device, and writes
``{"state_dict": {key: float32 tensor}, "meta": {...}}`` (loadable with ``weights_only=True``)
atomically. The classifier ``output_projection*`` is dropped. Any other key, a missing key or
a shape that does not fit is one ``TadInputError`` naming ``src``.

Layout map (Flax -> ours, ``E`` an encoder, ``P`` its module: ``encoder``/``spatial``/``temporal``):
- ``embedding/kernel`` (t, h, w, 3, C) -> ``patch_embed.proj.weight`` (C, 3, t, h, w);
- ``cls`` / ``cls_SpatialTransformer`` / ``cls_TemporalTransformer`` -> ``P.cls_token``;
- ``E/posembed_input/pos_embedding`` -> ``P.pos_embed``; ``E/encoder_norm`` -> ``P.norm``;
- ``E/encoderblock_i/LayerNorm_0|1`` -> ``P.blocks.i.norm1|2`` (scale -> weight);
- ``MultiHeadDotProductAttention_0/{query,key,value}`` kernels (C, heads, d) and biases
  (heads, d) -> ``attn.qkv`` (3C, C) / (3C,); ``out`` (heads, d, C) -> ``attn.proj``;
- ``MlpBlock_0/Dense_0|1`` (in, out) -> ``mlp.fc1|fc2`` (out, in).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from tad.errors import TadInputError
from tad.features.backbones.flax_msgpack import flatten_tree, flax_params, read_flax_checkpoint
from tad.features.backbones.vivit import VIVIT_SIZES

#: Flax encoder scope -> (our module prefix, class-token parameter).
ENCODERS = {
    "Transformer": ("encoder", "cls"),
    "SpatialTransformer": ("spatial", "cls_SpatialTransformer"),
    "TemporalTransformer": ("temporal", "cls_TemporalTransformer"),
}
IGNORED = ("output_projection",)  # classifier heads (incl. EPIC's multi-head ones)
_BLOCK = re.compile(r"^encoderblock_(\d+)/(.+)$")
_LAYER = {"LayerNorm_0": "norm1", "LayerNorm_1": "norm2", "MlpBlock_0/Dense_0": "mlp.fc1",
          "MlpBlock_0/Dense_1": "mlp.fc2", "MultiHeadDotProductAttention_0/out": "attn.proj"}
_QKV = "MultiHeadDotProductAttention_0/"


def _leaf(name: str) -> str:
    return {"scale": "weight", "kernel": "weight", "bias": "bias"}.get(name, name)


def _dense(kernel: np.ndarray, out_dims: int = 1) -> np.ndarray:
    """A Flax (in..., out...) kernel as a torch (out, in) weight."""
    kernel = np.asarray(kernel)
    n_in = kernel.ndim - out_dims
    return kernel.reshape(int(np.prod(kernel.shape[:n_in])), -1).T


class FlaxViTMapper:
    """Collects one checkpoint's tensors under our names: scenic ViT encoders (``posembed_input``,
    ``encoderblock_i``, ``encoder_norm``) go through ``encoder``, anything else through ``put``;
    ``finish`` merges the q/k/v projections and reports foreign parameters (shared by the ViViT
    and MTV converters)."""

    def __init__(self, src: str | Path, model_name: str):
        self.src, self.model_name = src, model_name
        self.state: dict[str, np.ndarray] = {}
        self.unexpected: list[str] = []
        self._qkv: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def put(self, key: str, value: np.ndarray) -> None:
        self.state[key] = value

    def encoder(self, prefix: str, rest: str, value: np.ndarray, name: str) -> None:
        """``rest`` is a path inside a scenic ViT encoder whose module is ``prefix``."""
        if rest == "posembed_input/pos_embedding":
            self.state[f"{prefix}.pos_embed"] = value
            return
        if rest.startswith("encoder_norm/"):
            self.state[f"{prefix}.norm.{_leaf(rest.split('/')[1])}"] = value
            return
        match = _BLOCK.match(rest)
        if not match:
            self.unexpected.append(name)
            return
        self.block(f"{prefix}.blocks.{match.group(1)}", match.group(2), value, name)

    def block(self, block: str, layer: str, value: np.ndarray, name: str) -> None:
        """``layer`` is a path inside a scenic ``Encoder1DBlock`` whose module is ``block``."""
        layer_scope, _, leaf = layer.rpartition("/")
        if layer_scope in _LAYER:
            self.state[f"{block}.{_LAYER[layer_scope]}.{_leaf(leaf)}"] = _dense(value) if leaf == "kernel" else value
        elif layer_scope in (_QKV + "query", _QKV + "key", _QKV + "value"):
            self._qkv.setdefault((block, leaf), {})[layer_scope.rsplit("/", 1)[1]] = value
        else:
            self.unexpected.append(name)

    def finish(self) -> dict[str, np.ndarray]:
        for (block, leaf), parts in self._qkv.items():
            if set(parts) != {"query", "key", "value"}:
                missing = sorted({"query", "key", "value"} - set(parts))
                raise TadInputError(self.src, f"{block}: attention lacks {', '.join(missing)} {leaf}")
            if leaf == "kernel":  # (C, heads, d) each -> (3C, C)
                self.state[f"{block}.attn.qkv.weight"] = np.concatenate([_dense(parts[k], out_dims=2)
                                                                         for k in ("query", "key", "value")])
            elif leaf == "bias":  # (heads, d) each -> (3C,)
                self.state[f"{block}.attn.qkv.bias"] = np.concatenate([parts[k].reshape(-1)
                                                                       for k in ("query", "key", "value")])
            else:
                self.unexpected.append(f"{block} attention {leaf}")
        if self.unexpected:
            shown = ", ".join(self.unexpected[:5])
            if len(self.unexpected) > 5:
                shown += f", ... (+{len(self.unexpected) - 5} more)"
            raise TadInputError(self.src, f"not a {self.model_name} checkpoint: {len(self.unexpected)} parameters "
                                          f"scenic's {self.model_name} does not have: {shown}")
        return self.state


def conv_tubelet(value: np.ndarray) -> np.ndarray:
    """A Flax Conv kernel (t, h, w, 3, C) as a torch Conv3d weight (C, 3, t, h, w)."""
    return value.transpose(4, 3, 0, 1, 2) if value.ndim == 5 else value


def flax_to_torch(flat: dict[str, np.ndarray], src: str | Path) -> dict[str, np.ndarray]:
    """Flattened scenic ViViT params ('a/b/c' -> array) -> our state dict (numpy)."""
    out = FlaxViTMapper(src, "ViViT")
    for name, value in flat.items():
        value = np.asarray(value)
        if name.startswith(IGNORED):
            continue
        if name in ("embedding/kernel", "embedding/bias"):
            out.put(f"patch_embed.proj.{_leaf(name.split('/')[1])}", conv_tubelet(value))
            continue
        cls_owner = next((p for p, c in ENCODERS.values() if name == c), None)
        if cls_owner is not None:
            out.put(f"{cls_owner}.cls_token", value)
            continue
        scope, _, rest = name.partition("/")
        if scope not in ENCODERS:
            out.unexpected.append(name)
            continue
        out.encoder(ENCODERS[scope][0], rest, value, name)
    return out.finish()


def infer_architecture(state: dict[str, np.ndarray], src: str | Path) -> dict:
    """Backbone build arguments (model, width, heads-free sizes, grid) read from the shapes."""
    if "encoder.pos_embed" in state:
        model = "unfactorised"
    elif "spatial.pos_embed" in state and "temporal.pos_embed" in state:
        model = "factorised_encoder"
    else:
        found = sorted({k.split(".")[0] for k in state})
        raise TadInputError(src, "not a ViViT checkpoint: no 'Transformer' (model 1) or 'SpatialTransformer' + "
                                 f"'TemporalTransformer' (model 2) encoder with a position table (found: {found})")
    if "patch_embed.proj.weight" not in state:
        raise TadInputError(src, "not a ViViT checkpoint: no tubelet 'embedding/kernel'")
    width, _, tubelet, patch, _ = state["patch_embed.proj.weight"].shape

    def depth(prefix: str) -> int:
        return len({k.split(".")[2] for k in state if k.startswith(f"{prefix}.blocks.")})

    first = "encoder" if model == "unfactorised" else "spatial"
    arch = dict(model=model, width=int(width), mlp_dim=int(state[f"{first}.blocks.0.mlp.fc1.weight"].shape[0])
                if f"{first}.blocks.0.mlp.fc1.weight" in state else None, depth=depth(first),
                tubelet=int(tubelet), patch=int(patch))
    if model == "unfactorised":
        arch["tokens"] = int(state["encoder.pos_embed"].shape[1]) - 1
    else:
        arch["temporal_depth"] = depth("temporal")
        arch["spatial_tokens"] = int(state["spatial.pos_embed"].shape[1]) - 1
        arch["temporal_tokens"] = int(state["temporal.pos_embed"].shape[1]) - 1
    return arch


def _heads_of(flat: dict[str, np.ndarray]) -> int | None:
    for name, value in flat.items():
        if name.endswith(_QKV + "query/kernel"):
            return int(np.asarray(value).shape[1])
    return None


def release_backbone(arch: dict) -> str:
    """The registered ViViT whose release has these sizes (by model and width)."""
    if arch["model"] == "unfactorised":
        return "vivit_b16x2_k400"
    return "vivit_l16x2_fe_k400" if arch["width"] == 1024 else "vivit_b16x2_fe_k400"


def build_args(arch: dict, heads: int | None) -> dict:
    """``ViViT`` constructor arguments reproducing ``arch`` (the release's when they agree)."""
    if arch["model"] == "unfactorised":
        tokens, frames_tokens = arch["tokens"], None
    else:
        tokens, frames_tokens = arch["spatial_tokens"], arch["temporal_tokens"]
    side = int(round(tokens ** 0.5))
    args = dict(model=arch["model"], width=arch["width"], depth=arch["depth"], mlp_dim=arch["mlp_dim"])
    if heads:
        args["heads"] = heads
    if arch["model"] == "factorised_encoder":
        args.update(temporal_depth=arch["temporal_depth"], img_size=side * arch["patch"],
                    num_frames=frames_tokens * arch["tubelet"])
    return args


def convert_vivit_checkpoint(src: str | Path, dst: str | Path, backbone: str | None = None,
                             num_frames: int | None = None, img_size: int | None = None) -> dict:
    """Convert ``src`` (scenic ViViT Flax checkpoint) to ``dst`` (``.pth``); returns the meta
    written with it (backbone name and the build options that load it strictly).

    Args:
        src: a scenic checkpoint file or directory (the ``checkpoint_<step>`` with the highest step).
        dst: the ``.pth`` to write (replaced atomically).
        backbone: registry name to check against; None picks the release matching the shapes.
        num_frames, img_size: the clip the model 1 position table was trained for when it is not
            the release's 32 x 224^2 (model 1's table is one row per (t, h, w) token).
    """
    from tad.features.backbones.checkpoint import match_state_dict
    from tad.features.registry import BACKBONES
    import tad.features.backbones  # noqa: F401  (registers the ViViT backbones)

    flat = flatten_tree(flax_params(read_flax_checkpoint(src), src))
    state = flax_to_torch(flat, src)
    arch = infer_architecture(state, src)
    name = backbone or release_backbone(arch)
    if name not in BACKBONES.module_dict or not name.startswith("vivit"):
        raise TadInputError("--backbone", f"{name!r} is not a registered ViViT backbone")
    options = build_args(arch, _heads_of(flat))
    if arch["model"] == "unfactorised":
        if num_frames is not None:
            options["num_frames"] = num_frames
        if img_size is not None:
            options["img_size"] = img_size
    with torch.device("meta"):  # shapes only: check every key before writing anything
        model = BACKBONES.build(dict(type=name, **options))
    tensors = match_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
                                for k, v in state.items()}, model, src)
    meta = dict(converted_from="scenic ViViT Flax checkpoint", source=str(Path(src).name), backbone=name,
                options=_non_default_options(name, options))
    write_converted(tensors, meta, dst)
    return meta


def write_converted(tensors: dict[str, torch.Tensor], meta: dict, dst: str | Path) -> None:
    """``{"state_dict": tensors, "meta": meta}`` to ``dst`` atomically (a ``.partial`` file, then renamed)."""
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".partial")
    torch.save({"state_dict": {k: v.contiguous() for k, v in tensors.items()}, "meta": meta}, tmp)
    os.replace(tmp, dst)


def _non_default_options(name: str, options: dict) -> dict:
    """The build options that differ from the registered release (``--backbone-option``s)."""
    from tad.features.registry import BACKBONES

    with torch.device("meta"):
        release = BACKBONES.build(dict(type=name))
    size = VIVIT_SIZES[release.size]
    ref = dict(model=release.model, img_size=release.img_size, num_frames=release.num_frames, width=size.width,
               heads=size.heads, mlp_dim=size.mlp_dim, depth=size.depth, temporal_depth=size.temporal_depth)
    return {key: value for key, value in options.items() if ref.get(key) != value}
