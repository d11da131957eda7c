"""ViViT: the softmax(QK^T)V attention form (as scenic's ``nn.dot_product_attention`` computes it)
against our fused SDPA default, in the same process.

scenic's own model is JAX/Flax and does not run in this process (no JAX at run time), so the
official-code comparison is the parity test, not a speed row. The ViViTs take clips at exactly
their ``img_size`` (224) and ``num_frames`` (32): ``--quick``/``--crop`` do not apply to them.
"""
from tad.features.registry import BACKBONES

from backbone_rows import Variant

VARIANTS = [
    Variant(backbone=name, label="math-attn",
            build=lambda name=name: BACKBONES.build(dict(type=name, attn_impl="math")).eval(),
            note="the same model with softmax(QK^T)V attention (no fused kernel)")
    for name in ("vivit_b16x2_k400", "vivit_b16x2_fe_k400", "vivit_l16x2_fe_k400")
]
