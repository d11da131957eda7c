"""TAda2D: the official grouped-conv TAdaConv (one group per frame) against our one-conv form."""
from tad.features.registry import BACKBONES

from backbone_rows import Variant

VARIANTS = [
    Variant(backbone="tada2d_r50", label="grouped",
            build=lambda: BACKBONES.build(dict(type="tada2d_r50", tada_impl="grouped")).eval(),
            note="the official TAdaConv form (grouped conv2d, one group per frame)"),
]
