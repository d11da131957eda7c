"""GSF: the official ``nn.Conv3d`` gate (2 groups, one output each) against our GEMM form.

The official GSF / TEA / RSA code is not a dependency (and TEA's ``ops/tea50_8f.py`` does not
import as released: a missing comma in ``model_urls``); the official GSF arithmetic is the
``gate_impl="conv3d"`` build, which the parity test checks against the official code.
"""
from tad.features.registry import BACKBONES

from backbone_rows import Variant

VARIANTS = [
    Variant(backbone="gsf_r50", label="conv3d",
            build=lambda: BACKBONES.build(dict(type="gsf_r50", gate_impl="conv3d")).eval(),
            note="the official GSF gate: nn.Conv3d(P, 2, 3, groups=2)"),
]
