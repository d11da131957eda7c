"""pytorchvideo's own X3D (``create_x3d``, the hub model) timed beside ours where pytorchvideo imports.

The project does not depend on pytorchvideo (nor on torchvision, which its model package
imports). Where both import (a scratch venv), ``build`` runs the official model unchanged,
classifier head included (one small matmul). Elsewhere the row says why it did not run.
"""
from __future__ import annotations

from backbone_rows import Variant

_SIZES = {"x3d_xs": (4, 160, 2.2), "x3d_s": (13, 160, 2.2), "x3d_m": (16, 224, 2.2), "x3d_l": (16, 312, 5.0)}


def _official(name: str):
    def build():
        try:
            from pytorchvideo.models.x3d import create_x3d
        except Exception as exc:  # ImportError, or torchvision failing to load its compiled ops
            raise ImportError(f"pytorchvideo is not importable here ({type(exc).__name__}: {str(exc)[:80]})") from None
        frames, crop, depth = _SIZES[name]
        # head_pool: global, so any --quick crop runs; the official fixed pool equals it at the shipped size
        return create_x3d(input_clip_length=frames, input_crop_size=crop, depth_factor=depth,
                          head_output_with_global_average=True).eval()
    return build


VARIANTS = [Variant(backbone=name, label="official", build=_official(name),
                    note="pytorchvideo.models.x3d.create_x3d (unchanged)") for name in _SIZES]
