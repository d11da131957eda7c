"""Frames -> normalised clip tensors, following a backbone's ``BackboneSpec``.

Two geometries: short-side resize to ``short_side`` then a centre ``crop`` x ``crop``
(the usual test view), or a square ``resize`` x ``resize`` (whole frame, aspect not
kept). In extraction the resize is done by the decoder (``FrameGeometry.decode_size``)
and the crop in numpy before frames leave the worker; ``normalize_clips`` then runs on
the model's device. ``ClipTransform`` does all steps in torch for frames from anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FrameGeometry", "ClipTransform", "normalize_clips"]


@dataclass(frozen=True)
class FrameGeometry:
    short_side: int | None = None
    crop: int | None = None
    resize: int | None = None

    def decode_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) frames should be resized to before cropping."""
        if self.resize:
            return int(self.resize), int(self.resize)
        if self.short_side:
            scale = self.short_side / min(width, height)
            # round so the short side is exactly short_side; keep sizes even-free (decord accepts any)
            if width <= height:
                return int(self.short_side), max(1, int(round(height * scale)))
            return max(1, int(round(width * scale))), int(self.short_side)
        return int(width), int(height)

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(top, left, crop_h, crop_w) of the centre crop on a frame of this size."""
        if self.resize or not self.crop:
            return 0, 0, height, width
        ch, cw = min(self.crop, height), min(self.crop, width)
        return (height - ch) // 2, (width - cw) // 2, ch, cw

    def crop_frames(self, frames: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) -> (n, h, w, 3) centre crop (a view)."""
        top, left, ch, cw = self.crop_box(frames.shape[2], frames.shape[1])
        return frames[:, top : top + ch, left : left + cw]


def normalize_clips(clips, mean, std, dtype=None, channels_last: bool = False):
    """uint8 (B, T, H, W, 3) tensor -> (B, 3, T, H, W) float: /255, minus mean, over std."""
    import torch

    dtype = dtype or torch.float32
    x = clips.permute(0, 4, 1, 2, 3).to(torch.float32)  # (B, 3, T, H, W)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1, 1) * 255.0
    std_t = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1, 1) * 255.0
    x = ((x - mean_t) / std_t).to(dtype)
    if channels_last:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x.contiguous()


class ClipTransform:
    """uint8 frames (T, H, W, 3) (numpy or tensor) -> normalised float (3, T, h, w)."""

    def __init__(self, mean, std, short_side: int | None = None, crop: int | None = None, resize: int | None = None):
        self.mean, self.std = tuple(mean), tuple(std)
        self.geometry = FrameGeometry(short_side, crop, resize)

    def __call__(self, frames):
        import torch
        import torch.nn.functional as F

        x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
        if x.dtype != torch.uint8:
            raise TypeError(f"frames must be uint8 (T, H, W, 3), got {x.dtype}")
        height, width = x.shape[1], x.shape[2]
        out_w, out_h = self.geometry.decode_size(width, height)
        x = x.permute(0, 3, 1, 2).to(torch.float32)  # (T, 3, H, W)
        if (out_h, out_w) != (height, width):
            x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=True)
            x = x.clamp_(0, 255)
        top, left, ch, cw = self.geometry.crop_box(out_w, out_h)
        x = x[:, :, top : top + ch, left : left + cw]  # (T, 3, h, w)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std).view(1, 3, 1, 1) * 255.0
        x = (x - mean) / std
        return x.permute(1, 0, 2, 3).contiguous()  # (3, T, h, w)
