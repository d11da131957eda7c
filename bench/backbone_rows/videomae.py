"""VideoMAE: the official softmax(QK^T)V attention form against our fused SDPA default.

The ViTs take clips at exactly their ``img_size`` (224) and ``num_frames`` (16); every
registered size (``videomae_vit_{s,b,l,h,g}``) and MViT get their plain rows from the registry.
"""
from tad.features.registry import BACKBONES

from backbone_rows import Variant

VARIANTS = [
    Variant(backbone="videomae_vit_b", label="official-attn",
            build=lambda: BACKBONES.build(dict(type="videomae_vit_b", attn_impl="math")).eval(),
            note="ViT-B/16 with the official attention form (softmax(QK^T)V, no fused kernel)"),
]
