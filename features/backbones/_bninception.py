"""The BN-Inception trunk of the TSN-style code (``bn_inception``), official key layout.

Written as a compact table run by ``_inception.InceptionTrunk``: a stem (7x7/2 conv, 3x3/2
max-pool, 1x1 and 3x3 convs, 3x3/2 max-pool), then ten inception blocks: eight "A" blocks
(1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | 3x3 pool -> 1x1 projection) and two grid reductions
(``3c``, ``4e``: 1x1 -> 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max-pool). A conv unit ``NAME`` is
``NAME`` (a biased ``nn.Conv2d``) + ``NAME_bn`` + ReLU, the released keys (e.g.
``inception_4d_double_3x3_2.weight``); a temporal module between conv and BN is ``gsf_NAME``.
Pools are Caffe's (ceil mode; average pools count the padding). The map is (B*T, 1024, h, w)
before the global average pool.
"""
from __future__ import annotations

from tad.features.backbones._inception import InceptionTrunk, Step, unit as _conv


def _block_a(c1: int, r3: int, c3: int, rd: int, cd: int, pool: str, proj: int) -> list[list[Step]]:
    return [[_conv("1x1", c1)],
            [_conv("3x3_reduce", r3), _conv("3x3", c3, 3, pad=1)],
            [_conv("double_3x3_reduce", rd), _conv("double_3x3_1", cd, 3, pad=1), _conv("double_3x3_2", cd, 3, pad=1)],
            [(pool, 3, 1, 1), _conv("pool_proj", proj)]]


def _block_b(r3: int, c3: int, rd: int, cd: int) -> list[list[Step]]:
    return [[_conv("3x3_reduce", r3), _conv("3x3", c3, 3, 2, 1)],
            [_conv("double_3x3_reduce", rd), _conv("double_3x3_1", cd, 3, pad=1), _conv("double_3x3_2", cd, 3, 2, 1)],
            [("max", 3, 2, 0)]]


STEM: list[Step] = [_conv("conv1_7x7_s2", 64, 7, 2, 3), ("max", 3, 2, 0), _conv("conv2_3x3_reduce", 64),
                    _conv("conv2_3x3", 192, 3, pad=1), ("max", 3, 2, 0)]
BLOCKS: list[tuple[str, list[list[Step]]]] = [
    ("inception_3a", _block_a(64, 64, 64, 64, 96, "avg", 32)),
    ("inception_3b", _block_a(64, 64, 96, 64, 96, "avg", 64)),
    ("inception_3c", _block_b(128, 160, 64, 96)),
    ("inception_4a", _block_a(224, 64, 96, 96, 128, "avg", 128)),
    ("inception_4b", _block_a(192, 96, 128, 96, 128, "avg", 128)),
    ("inception_4c", _block_a(160, 128, 160, 128, 160, "avg", 128)),
    ("inception_4d", _block_a(96, 128, 192, 160, 192, "avg", 128)),
    ("inception_4e", _block_b(128, 192, 192, 256)),
    ("inception_5a", _block_a(352, 192, 320, 160, 224, "avg", 128)),
    ("inception_5b", _block_a(352, 192, 320, 192, 224, "max", 128)),
]
FEATURE_DIM = 1024


class BNInceptionTrunk(InceptionTrunk):
    """BN-Inception: the table above, keys ``{unit}``, ``{unit}_bn``, ``gsf_{unit}``."""

    STEM, BLOCKS, FEATURE_DIM = STEM, BLOCKS, FEATURE_DIM
    CONV_KEY, BN_KEY, TEMPORAL_KEY = "{}", "{}_bn", "gsf_{}"
