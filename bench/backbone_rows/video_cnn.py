"""torchvision's own R3D-18 / MC3-18 / R(2+1)D-18 / S3D, timed beside ours where torchvision imports.

The project does not depend on torchvision: its PyPI build does not import beside the CPU torch
here (its compiled ops fail to register). Its video models are pure Python, so where the package
is installed (e.g. a scratch venv) ``build`` registers an empty ``torchvision._meta_registrations``
before importing it, then runs the official model unchanged with its ``fc``/``classifier`` head
(a single matmul, negligible). Where torchvision is absent the row says so and the run goes on.
"""
from __future__ import annotations

import sys
import types

from backbone_rows import Variant


def _torchvision_video():
    try:
        if "torchvision" not in sys.modules:
            sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
        from torchvision.models import video
    except Exception as exc:  # ImportError, or the compiled-ops RuntimeError
        raise ImportError(f"torchvision is not importable here ({type(exc).__name__}: {str(exc)[:80]})") from None
    return video


def _official(fn_name: str):
    def build():
        return getattr(_torchvision_video(), fn_name)().eval()
    return build


VARIANTS = [
    Variant(backbone=name, label="official", build=_official(fn), note=f"torchvision.models.video.{fn} (unchanged)")
    for name, fn in (("r3d_18", "r3d_18"), ("mc3_18", "mc3_18"), ("r2plus1d_18", "r2plus1d_18"), ("s3d_tv", "s3d"))
]
