"""GSF-BNInception / GSF-InceptionV3 against the official GSF gate and, given a checkout, the official models.

- ``conv3d``: our model with the gate as the official ``nn.Conv3d(P, 2, 3, groups=2)``.
- ``official``: swathikirans/GSF's own ``backbones/pytorch_load.BNInception_gsf`` /
  ``InceptionV3_gsf`` (from the ``TAD_GSF_OFFICIAL`` checkout, as ``temporal2d.py``). Two shims,
  only while it is built: its ``yaml.load(open(path))`` gets ``Loader=yaml.SafeLoader`` (PyYAML 6
  requires one) and its ImageNet-weight download (``torch.utils.model_zoo.load_url``) returns an
  empty dict (it loads non-strictly; nothing is fetched, the weights stay random). It is built from
  the checkout folder (its YAML paths are relative) and takes frames first, BGR, as ours after the
  flip: the wrapper flips the channels as our model does.
"""
from __future__ import annotations

import contextlib
import os
import sys

import torch
from torch import nn

from tad.features.registry import BACKBONES

from backbone_rows import Variant

NAMES = {"gsf_bninception": "BNInception_gsf", "gsf_inceptionv3": "InceptionV3_gsf"}


class _FramesFirstBGR(nn.Module):
    """(B, 3, T, H, W) RGB clips -> the official BGR frame batch (B*T, 3, H, W) -> its logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = clips.shape
        return self.model(clips.flip(1).transpose(1, 2).reshape(b * t, c, h, w))


@contextlib.contextmanager
def _official_build_shims(root: str):
    import yaml
    import torch.utils.model_zoo as model_zoo
    load, load_url, cwd = yaml.load, model_zoo.load_url, os.getcwd()
    yaml.load = lambda stream, Loader=yaml.SafeLoader: load(stream, Loader=Loader)
    model_zoo.load_url = lambda *args, **kwargs: {}
    sys.path.insert(0, root)
    os.chdir(root)
    try:
        yield
    finally:
        yaml.load, model_zoo.load_url = load, load_url
        os.chdir(cwd)
        sys.path.remove(root)


def _official(name: str):
    def build() -> nn.Module:
        root = os.environ.get("TAD_GSF_OFFICIAL")
        if not root or not os.path.isfile(os.path.join(root, "backbones", "pytorch_load.py")):
            raise ImportError("set TAD_GSF_OFFICIAL to a checkout of swathikirans/GSF to time the official model")
        root = os.path.abspath(root)
        segments = BACKBONES.build(dict(type=name)).spec.clip_len
        with _official_build_shims(root):
            from backbones import pytorch_load
            model = getattr(pytorch_load, NAMES[name])(num_segments=segments, gsf_ch_ratio=100)
        return _FramesFirstBGR(model).eval()
    return build


VARIANTS = [variant for name in NAMES for variant in (
    Variant(backbone=name, label="conv3d", build=lambda name=name: BACKBONES.build(
        dict(type=name, gate_impl="conv3d")).eval(), note="the official GSF gate: nn.Conv3d(P, 2, 3, groups=2)"),
    Variant(backbone=name, label="official", build=_official(name),
            note=f"swathikirans/GSF backbones/pytorch_load.{NAMES[name]} (from TAD_GSF_OFFICIAL; yaml/download shims)"),
)]
