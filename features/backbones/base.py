"""The contract every clip backbone fulfils, so extraction can treat them alike."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone expects of a clip; ``tad extract`` defaults come from here.

    A clip is ``clip_len`` frames taken every ``frame_interval`` frames of a stream
    resampled to ``fps``; consecutive clips start ``clip_stride`` frames apart.
    Frames are RGB, scaled to [0, 1], normalised with ``mean``/``std``, resized so
    the short side is ``short_side`` and centre-cropped to ``crop`` x ``crop``.
    """

    clip_len: int
    frame_interval: int
    feature_dim: int
    fps: float = 30.0
    clip_stride: int = 4
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    short_side: int = 256
    crop: int = 224
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BackboneCard:
    """What ``tad backbones`` shows about a registered backbone, readable without building it.

    Every backbone class sets ``card`` as a class attribute. ``input`` reads like
    ``"16 x 1 @ 112^2"`` (frames x sampling interval @ crop), ``norm`` names the
    normalisation (e.g. ``"mean 0.45 / std 0.225, RGB [0, 1]"``), ``gflops`` is per clip at the
    size in ``input`` (2 FLOPs per multiply-add), ``checkpoints`` lists the released file names that load unchanged,
    ``source`` says where they are published, and ``continual`` names the online/continual
    modes (empty when there are none).
    """

    paper: str
    input: str
    norm: str
    feature_dim: int
    gflops: float | None = None
    checkpoints: tuple[str, ...] = ()
    source: str = ""
    continual: tuple[str, ...] = ()


class Backbone(nn.Module):
    """Base class: ``forward`` takes normalised clips, returns one feature per clip.

    Subclasses set ``spec`` and implement ``forward_maps`` returning the last
    feature map(s); pooling to a vector or a spatial grid is shared here.
    """

    spec: BackboneSpec
    card: BackboneCard | None = None

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """clips: (B, 3, T, H, W) float, normalised. Returns a list of (B, C_i, T_i, h, w) maps."""
        raise NotImplementedError

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, C) or, with ``spatial_grid=g``, (B, C, g, g)."""
        pooled = []
        for fmap in self.forward_maps(clips):  # (B, C_i, T_i, h, w)
            if spatial_grid is None:
                pooled.append(fmap.mean(dim=(2, 3, 4)))  # (B, C_i)
            else:
                spatial = fmap.mean(dim=2)  # (B, C_i, h, w)
                pooled.append(nn.functional.adaptive_avg_pool2d(spatial, spatial_grid))  # (B, C_i, g, g)
        return torch.cat(pooled, dim=1)
