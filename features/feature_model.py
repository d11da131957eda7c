"""The model stage: a registered backbone on its device; uint8 clips in, features out.

``build_backbone(opts)`` builds and loads the backbone named by ``ExtractOptions``
(one-line errors for an unknown name, a bad ``--backbone-option`` or checkpoint);
``FeatureModel`` normalises uint8 (B, T, h, w, 3) clips on the device and returns
(B, C[, g, g]) float32 numpy features, with optional autocast and channels-last.
A continual backbone (``tad.features.backbones.continual``) is run frame by frame
instead: ``FeatureModel.continual_stream(...)`` gives one video's
``ContinualFeatureStream``; it has no spatial grid and no channels-last mode.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tad.errors import TadInputError
from tad.features.extract_options import ExtractOptions, check_options_early
from tad.features.frame_transforms import normalize_clips

__all__ = ["FeatureModel", "build_backbone", "resolve_device"]


def resolve_device(name: str):
    import torch

    name = str(name)
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise TadInputError("--device", f"{name} requested but CUDA is not available (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise TadInputError("--device", f"unknown device {name!r}") from None


def build_backbone(opts: ExtractOptions):
    """Model, effective options (the store's ``options``), checkpoint name and sha256."""
    from tad.features.registry import BACKBONES
    import tad.features.backbones  # noqa: F401  (registers every backbone)

    if opts.backbone not in BACKBONES.module_dict:
        names = ", ".join(sorted(BACKBONES.module_dict))
        raise TadInputError("--backbone", f"unknown backbone {opts.backbone!r}; registered: {names}")
    check_options_early(opts)
    try:
        model = BACKBONES.build(dict(type=opts.backbone, **opts.backbone_kwargs))
    except (TypeError, ValueError, KeyError) as exc:  # a bad --backbone-option
        if isinstance(exc, TadInputError):
            raise
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise TadInputError("--backbone-option", f"{opts.backbone}: {message}") from None
    checkpoint_name, checkpoint_sha = "", ""
    if opts.checkpoint is not None:
        from tad.features.backbones.checkpoint import file_sha256, load_backbone_checkpoint

        load_backbone_checkpoint(model, opts.checkpoint)
        checkpoint_name, checkpoint_sha = Path(opts.checkpoint).name, file_sha256(opts.checkpoint)
    return model, checkpoint_name, checkpoint_sha


class FeatureModel:
    """Backbone on its device with autocast/channels-last; uint8 clips -> features numpy."""

    def __init__(self, model, spec, opts, mean, std, device):
        import torch

        from tad.features.continual_features import is_continual

        self.torch = torch
        self.device = device
        self.continual = is_continual(model)
        if self.continual and opts.spatial_grid is not None:
            raise TadInputError("--spatial-grid", f"{opts.backbone} is a continual backbone: one vector per step, "
                                "no spatial grid")
        if self.continual and opts.channels_last:
            raise TadInputError("--channels-last", f"{opts.backbone} is a continual backbone: not supported")
        self.model = model.to(device).eval()
        self.channels_last = opts.channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        self.autocast_dtype = None if opts.dtype == "float32" else getattr(torch, opts.dtype)
        self.spatial_grid = opts.spatial_grid
        self.mean, self.std = mean, std

    def __call__(self, clips) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = clips.to(self.device, non_blocking=True)
            x = normalize_clips(x, self.mean, self.std, channels_last=self.channels_last)  # (B, 3, T, h, w)
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype or torch.float32,
                                enabled=self.autocast_dtype is not None):
                feats = self.model(x, spatial_grid=self.spatial_grid)  # (B, C[, g, g])
            return feats.float().cpu().numpy()

    def continual_stream(self, clip_len: int, frame_interval: int, clip_stride: int):
        """A fresh ``ContinualFeatureStream`` for one video (continual backbones only)."""
        from tad.features.continual_features import ContinualFeatureStream

        return ContinualFeatureStream(self.model, clip_len, frame_interval, clip_stride, self.mean, self.std,
                                      self.device, self.autocast_dtype)
