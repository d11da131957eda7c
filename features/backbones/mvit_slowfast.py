"""MViTv1-B 16x4 and MViTv2-S 16x4 loading facebookresearch/SlowFast's ``.pyth`` checkpoints.

Contract: ``mvit_v1_b_16x4_slowfast`` / ``mvit_v2_s_16x4_slowfast`` are the networks of
``mvit.py`` (same math, same feature: the class token after the final LayerNorm, (B, 768)) that
load SlowFast's released ``{"model_state": ...}`` files (``K400_MVIT_B_16x4_CONV.pyth``,
``MViTv2_S_16x4_k400_f302660347.pyth``) strictly: every SlowFast key is renamed onto ours by
``from_slowfast_key``; ``head.projection.*`` is ignored; a key that has no place, or a place left
empty, is one error listing the keys in SlowFast's names. torchvision-layout files of the same
network load too (the rename leaves them unchanged).

Why a key mapping and not a second module (read from SlowFast ``slowfast/models/
video_model_builder.py`` ``MViT`` and ``attention.py`` at commit 287ec00 with
``configs/Kinetics/MVIT_B_16x4_CONV.yaml`` / ``MVITv2_S_16x4.yaml``, and checked by running it on
seeded weights): torchvision's port computes the same thing for these two configurations:
- v1: separate absolute positions (``SEP_POS_EMBED``: spatial tiled over time + temporal repeated
  over space + class), no rel-pos, no residual pooling, channel projection after ``norm2``;
- v2: no absolute positions; decomposed rel-pos (``rel_pos_h/w/t``, the same index rule) on the
  patch queries; residual pooling adds pooled q to the patch tokens only (the class token is
  excluded, ``has_cls_embed``); ``DIM_MUL_IN_ATT``: the channel change happens in attention and
  the skip path is ``proj(norm1(x))``;
- both: ``POOL_KVQ_KERNEL`` 3x3x3 depthwise conv pooling (no bias) + LayerNorm per head, adaptive
  kv strides from (1, 8, 8), q strides (1, 2, 2) at blocks 1, 3, 14, max-pool skip with kernel
  stride + 1, LayerNorm eps 1e-6, exact GELU, the class token read after the final norm.
SlowFast interpolates rel-pos / abs-pos tables for other input sizes; here, as in torchvision, the
tables must fit the clip (``img_size``/``num_frames`` options).

SlowFast's test view (``TEST.NUM_SPATIAL_CROPS: 1``: short side ``TRAIN_JITTER_SCALES[0]`` = 256,
centre crop 224; 16 frames every 4 at 30 fps; mean 0.45, std 0.225) is the spec of ``MViT``.
"""
from __future__ import annotations

import re

import torch

from tad.features.backbones.base import BackboneCard
from tad.features.backbones.mvit import _PAPERS, MViT
from tad.features.registry import BACKBONES

#: (SlowFast pattern, our template) pairs; whole-key regular expressions, first match wins.
_RULES = (
    (r"patch_embed\.proj\.(weight|bias)", r"conv_proj.\1"),
    (r"cls_token", "pos_encoding.class_token"),
    (r"pos_embed_spatial", "pos_encoding.spatial_pos"),
    (r"pos_embed_temporal", "pos_encoding.temporal_pos"),
    (r"pos_embed_class", "pos_encoding.class_pos"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"blocks.\1.attn.project.0.\2"),
    (r"blocks\.(\d+)\.attn\.pool_([qkv])\.weight", r"blocks.\1.attn.pool_\2.pool.weight"),
    (r"blocks\.(\d+)\.attn\.norm_([qkv])\.(weight|bias)", r"blocks.\1.attn.pool_\2.norm_act.0.\3"),
    (r"blocks\.(\d+)\.mlp\.fc1\.(weight|bias)", r"blocks.\1.mlp.0.\2"),
    (r"blocks\.(\d+)\.mlp\.fc2\.(weight|bias)", r"blocks.\1.mlp.3.\2"),
    (r"blocks\.(\d+)\.proj\.(weight|bias)", r"blocks.\1.project.\2"),
)
#: The inverse rules (our key -> SlowFast key), for naming keys in errors.
_INVERSE = (
    (r"conv_proj\.(weight|bias)", r"patch_embed.proj.\1"),
    (r"pos_encoding\.class_token", "cls_token"),
    (r"pos_encoding\.spatial_pos", "pos_embed_spatial"),
    (r"pos_encoding\.temporal_pos", "pos_embed_temporal"),
    (r"pos_encoding\.class_pos", "pos_embed_class"),
    (r"blocks\.(\d+)\.attn\.project\.0\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"blocks\.(\d+)\.attn\.pool_([qkv])\.pool\.weight", r"blocks.\1.attn.pool_\2.weight"),
    (r"blocks\.(\d+)\.attn\.pool_([qkv])\.norm_act\.0\.(weight|bias)", r"blocks.\1.attn.norm_\2.\3"),
    (r"blocks\.(\d+)\.mlp\.0\.(weight|bias)", r"blocks.\1.mlp.fc1.\2"),
    (r"blocks\.(\d+)\.mlp\.3\.(weight|bias)", r"blocks.\1.mlp.fc2.\2"),
    (r"blocks\.(\d+)\.project\.(weight|bias)", r"blocks.\1.proj.\2"),
)
#: Keys only SlowFast's layout has (detects the layout of a file).
_SLOWFAST_MARKERS = ("patch_embed.", "cls_token", "pos_embed_")


def _rename(key: str, rules: tuple[tuple[str, str], ...]) -> str | None:
    for pattern, template in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(template)
    return None


def from_slowfast_key(key: str) -> str | None:
    """Our key of a SlowFast MViT key (None: the key has no renaming rule)."""
    return _rename(key, _RULES)


def to_slowfast_key(key: str) -> str:
    """SlowFast's name of one of our keys (unchanged where both layouts agree)."""
    return _rename(key, _INVERSE) or key


class MViTSlowFast(MViT):
    """MViT that loads SlowFast's ``.pyth`` layout (see the module docstring); same args as ``MViT``."""

    checkpoint_ignore_prefixes = ("head.",)
    #: set while loading a SlowFast-layout file: errors then name keys the SlowFast way
    checkpoint_key_display = None

    def convert_checkpoint_keys(self, state: dict[str, object]) -> dict[str, object]:
        """SlowFast keys -> ours; (1, N, C) / (1, 1, C) position and class tensors -> (N, C) / (C,).
        A file without SlowFast-only keys (torchvision's layout) passes unchanged."""
        if not any(key.startswith(_SLOWFAST_MARKERS) for key in state):
            self.checkpoint_key_display = None
            return state
        self.checkpoint_key_display = to_slowfast_key
        own = self.state_dict()
        out: dict[str, object] = {}
        for key, value in state.items():
            ours = from_slowfast_key(key) or key  # keys without a rule are kept: unexpected, in SlowFast's names
            if ours.startswith("pos_encoding.") and ours in own and isinstance(value, torch.Tensor):
                target = tuple(own[ours].shape)
                if tuple(value.shape) == (1,) * (value.dim() - len(target)) + target:
                    value = value.reshape(target)  # SlowFast keeps a leading batch axis: (1, N, C) / (1, 1, C)
            out[ours] = value
        return out


_CHECKPOINTS = {
    "v1_b": ("K400_MVIT_B_16x4_CONV.pyth", "MODEL_ZOO.md MViTv1 B-Conv 16x4 link (Google Drive)"),
    "v2_s": ("MViTv2_S_16x4_k400_f302660347.pyth",
             "dl.fbaipublicfiles.com/pyslowfast/model_zoo/mvitv2/pysf_video_models/"),
}
_SLOWFAST_NORM = "mean 0.45 / std 0.225, RGB [0, 1]; short side 256, centre crop 224 (SlowFast single view)"


def _register(version: str, name: str, gflops: float) -> type:
    checkpoint, where = _CHECKPOINTS[version]
    card = BackboneCard(paper=_PAPERS[version], input="16 x 4 @ 224^2", norm=_SLOWFAST_NORM, feature_dim=768,
                        gflops=gflops, checkpoints=(checkpoint,),
                        source=f"facebookresearch/SlowFast MODEL_ZOO.md ({where})")
    cls = type(f"MViT{version.upper()}SlowFast", (MViTSlowFast,),
                {"registry_name": name, "default_version": version, "card": card, "__module__": __name__,
                 "__doc__": f"{card.paper} in SlowFast's .pyth layout (registry '{name}'); see ``MViTSlowFast``."})
    return BACKBONES.register_module(name=name, module=cls)


# GFLOPs per clip: the same networks as mvit_v1_b / mvit_v2_s (torch.utils.flop_counter, 16 x 224^2).
MViTV1B16x4SlowFast = _register("v1_b", "mvit_v1_b_16x4_slowfast", 141.2)
MViTV2S16x4SlowFast = _register("v2_s", "mvit_v2_s_16x4_slowfast", 128.4)
