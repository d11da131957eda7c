"""The Inception-v3 trunk of the TSN-style code (``inceptionv3-cuhk``), official key layout.

The net is written here as a compact table (run by ``_inception.InceptionTrunk``): a stem of
conv units and max-pools, then eleven ``mixed`` blocks (3 x 35^2 "A", one grid reduction,
4 x 17^2 "C" with 1x7/7x1 factorised towers, one grid reduction, 2 x 8^2 "E" with 1x3/3x1
splits). A conv unit ``NAME`` is ``NAME_Conv2D`` (a biased ``nn.Conv2d``) + ``NAME_batchnorm``
+ ReLU, so the state-dict keys are the released ones (e.g. ``mixed_4_tower_1_conv_3_Conv2D.weight``);
a temporal module between a unit's conv and BN is ``gsf_NAME_Conv2D`` (how GSF enters, see
``gsf_inception.py``). Pools are Caffe's: ceil mode, average pools counting the padding. The map
is (B*T, 2048, h, w) before the global average pool (``top_cls_pool``).
"""
from __future__ import annotations

from tad.features.backbones._inception import Conv, InceptionTrunk, Step, unit as _conv


def _block_a(pool_proj: int) -> list[list[Step]]:
    return [[_conv("conv", 64)],
            [_conv("tower_conv", 48), _conv("tower_conv_1", 64, 5, pad=2)],
            [_conv("tower_1_conv", 64), _conv("tower_1_conv_1", 96, 3, pad=1), _conv("tower_1_conv_2", 96, 3, pad=1)],
            [("avg", 3, 1, 1), _conv("tower_2_conv", pool_proj)]]


def _block_c(c7: int) -> list[list[Step]]:
    def f7(name: str, out: int, wide: bool) -> Conv:  # one half of a factorised 7x7: 1x7 or 7x1
        return _conv(name, out, (1, 7) if wide else (7, 1), 1, (0, 3) if wide else (3, 0))
    return [[_conv("conv", 192)],
            [_conv("tower_conv", c7), f7("tower_conv_1", c7, False), f7("tower_conv_2", 192, True)],
            [_conv("tower_1_conv", c7)] + [f7(f"tower_1_conv_{i}", 192 if i == 4 else c7, i % 2 == 1)
                                           for i in range(1, 5)],
            [("avg", 3, 1, 1), _conv("tower_2_conv", 192)]]


def _block_e(pool: str) -> list[list[Step]]:
    def split(prefix: str) -> list[Conv]:
        return [_conv(f"{prefix}_mixed_conv", 384, (3, 1), 1, (1, 0)),
                _conv(f"{prefix}_mixed_conv_1", 384, (1, 3), 1, (0, 1))]
    return [[_conv("conv", 320)],
            [_conv("tower_conv", 384), split("tower")],
            [_conv("tower_1_conv", 448), _conv("tower_1_conv_1", 384, 3, pad=1), split("tower_1")],
            [(pool, 3, 1, 1), _conv("tower_2_conv", 192)]]


STEM: list[Step] = [_conv("conv", 32, 3, 2), _conv("conv_1", 32, 3), _conv("conv_2", 64, 3, pad=1), ("max", 3, 2, 0),
                    _conv("conv_3", 80), _conv("conv_4", 192, 3), ("max", 3, 2, 0)]
#: (block name, branches); each block's output is the concatenation of its branches in this order
BLOCKS: list[tuple[str, list[list[Step]]]] = [
    ("mixed", _block_a(32)), ("mixed_1", _block_a(64)), ("mixed_2", _block_a(64)),
    ("mixed_3", [[_conv("conv", 384, 3, 2)],
                 [_conv("tower_conv", 64), _conv("tower_conv_1", 96, 3, pad=1), _conv("tower_conv_2", 96, 3, 2)],
                 [("max", 3, 2, 0)]]),
    ("mixed_4", _block_c(128)), ("mixed_5", _block_c(160)), ("mixed_6", _block_c(160)), ("mixed_7", _block_c(192)),
    ("mixed_8", [[_conv("tower_conv", 192), _conv("tower_conv_1", 320, 3, 2)],
                 [_conv("tower_1_conv", 192), _conv("tower_1_conv_1", 192, (7, 1), 1, (3, 0)),
                  _conv("tower_1_conv_2", 192, (1, 7), 1, (0, 3)), _conv("tower_1_conv_3", 192, 3, 2)],
                 [("max", 3, 2, 0)]]),
    ("mixed_9", _block_e("avg")), ("mixed_10", _block_e("max")),
]
FEATURE_DIM = 2048


class InceptionV3Trunk(InceptionTrunk):
    """Inception-v3: the table above, keys ``{unit}_Conv2D``, ``{unit}_batchnorm``, ``gsf_{unit}_Conv2D``."""

    STEM, BLOCKS, FEATURE_DIM = STEM, BLOCKS, FEATURE_DIM
    CONV_KEY, BN_KEY, TEMPORAL_KEY = "{}_Conv2D", "{}_batchnorm", "gsf_{}_Conv2D"
