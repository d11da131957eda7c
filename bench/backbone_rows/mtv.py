"""MTV: the softmax(QK^T)V attention form (self- and cross-view attention) against our fused SDPA
default, in the same process. scenic's own MTV is JAX/Flax and does not run here (the official
comparison is the parity test). Clips are exactly 32 x 224^2 (``--quick``/``--crop`` do not apply).
"""
from tad.features.registry import BACKBONES

from backbone_rows import Variant

VARIANTS = [
    Variant(backbone=name, label="math-attn",
            build=lambda name=name: BACKBONES.build(dict(type=name, attn_impl="math")).eval(),
            note="the same model with softmax(QK^T)V attention (no fused kernel)")
    for name in ("mtv_b_k400", "mtv_l_k600")
]
