"""GSF-R50 against the official GSF gate and, given a checkout, the official GSF model.

- ``conv3d``: our model with the gate as the official ``nn.Conv3d(P, 2, 3, groups=2)``
  (``gate_impl="conv3d"``), checked against the official code by the parity test.
- ``official``: swathikirans/GSF's own ``backbones/resnetGSFModels.ResNet`` (run unchanged) when
  ``TAD_GSF_OFFICIAL`` names a checkout of that repository; it is not a dependency, so without
  the variable the row says so. Its ``resnet50()`` helper raises a TypeError as released, so the
  class is built with the same arguments. Clips go in frames first, as its ``VideoModel`` does.
TEA's and RSA's official code are not timed: TEA's ``ops/tea50_8f.py`` does not import as
released (a missing comma in ``model_urls``), and RSA's ``ops/ResNet.py`` needs ``ops/logging.py``'s
``simplejson``/``iopath`` and ``einops``.
"""
from __future__ import annotations

import os
import sys

import torch
from torch import nn

from tad.features.registry import BACKBONES

from backbone_rows import Variant


class _FramesFirst(nn.Module):
    """(B, 3, T, H, W) clips -> the official frame batch (B*T, 3, H, W) -> its logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = clips.shape
        return self.model(clips.transpose(1, 2).reshape(b * t, c, h, w))


def _official_gsf() -> nn.Module:
    root = os.environ.get("TAD_GSF_OFFICIAL")
    if not root or not os.path.isfile(os.path.join(root, "gsf.py")):
        raise ImportError("set TAD_GSF_OFFICIAL to a checkout of swathikirans/GSF to time the official model")
    sys.path.insert(0, root)
    try:
        from backbones import resnetGSFModels as official
    finally:
        sys.path.remove(root)
    segments = BACKBONES.build(dict(type="gsf_r50")).spec.clip_len
    model = official.ResNet(official.Bottleneck, [3, 4, 6, 3], num_segments=segments, gsf_ch_ratio=100.0)
    return _FramesFirst(model).eval()


VARIANTS = [
    Variant(backbone="gsf_r50", label="conv3d",
            build=lambda: BACKBONES.build(dict(type="gsf_r50", gate_impl="conv3d")).eval(),
            note="the official GSF gate: nn.Conv3d(P, 2, 3, groups=2)"),
    Variant(backbone="gsf_r50", label="official", build=_official_gsf,
            note="swathikirans/GSF backbones/resnetGSFModels.ResNet (unchanged, from TAD_GSF_OFFICIAL)"),
]
