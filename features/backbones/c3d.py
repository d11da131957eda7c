"""C3D (Tran et al., ICCV 2015) trained on Sports-1M, in the ``c3d.pickle`` key layout.

``c3d.pickle`` (DavideA/c3d-pytorch, converted from the official Caffe
``conv3d_deepnetA_sport1m_iter_1900000``) holds ``conv1 ... conv5b``, ``fc6``, ``fc7``,
``fc8`` weights and biases, as a pickled ``torch`` state dict. Architecture: 3x3x3 convs
(pad 1) with ReLU; max-pools 1x2x2 after conv1, 2x2x2 after conv2, conv3b, conv4b, conv5b
(the last with spatial pad 1, as c3d-pytorch does so 7x7 becomes 4x4); flatten (C, T, H, W)
order to 8192; ``fc6`` 4096 + ReLU; ``fc7`` 4096 + ReLU. The feature is ``fc6`` (default)
or ``fc7`` after its ReLU, i.e. the Caffe ``fc6-1`` / ``fc7-1`` blobs (the Caffe ReLUs
are in place, so the extracted blobs are rectified); dropout is inactive at test time.

Pre-processing of the official Caffe model: frames in **BGR** order, values 0-255,
resized to 128 x 171 (h x w); the Sports-1M mean volume
(``sport1m_train16_128_mean.binaryproto``, 3 x 16 x 128 x 171, BGR) is subtracted
*before* the centre 112 x 112 crop (rows 8-119, columns 29-140), no std scaling.
Here the pipeline gives RGB [0, 1] frames (spec mean 0, std 1/255 makes them RGB 0-255);
the model flips them to BGR and subtracts the mean:
- ``mean_file=PATH``: the mean volume as ``.npy`` (3, 16, 128, 171) BGR, or channel-last
  (16, 128, 171, 3) / (1, 16, 128, 171, 3) as the Keras/TensorFlow ports ship it
  (``c3d_mean.npy``, ``train01_16_128_171_mean.npy``): cropped like the frames, one
  value per channel, frame, row and column, exactly as Caffe;
- or ``bgr_mean=(B, G, R)``: one value per channel (a plain per-channel subtraction, not
  the official volume; for random-init runs and files without the volume).
One of the two is required to run (the model builds without, so ``tad backbones`` can list
it, and refuses its first clip): the mean volume is not shipped here and not downloaded.
The official pipeline squashes every frame to 128 x 171; ``tad extract`` keeps the aspect
ratio (short side 128, centre crop 112): the two agree on 4:3 videos.

Clips: 16 consecutive frames (interval 1) at the video's 30 fps.
GFLOPs on the card are FLOPs (2 x multiply-adds) per clip.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tad.errors import TadInputError
from tad.features.backbones.base import Backbone, BackboneCard, BackboneSpec
from tad.features.registry import BACKBONES

CONVS = (("conv1", 3, 64), ("conv2", 64, 128), ("conv3a", 128, 256), ("conv3b", 256, 256), ("conv4a", 256, 512),
         ("conv4b", 512, 512), ("conv5a", 512, 512), ("conv5b", 512, 512))
POOL_AFTER = {"conv1": ((1, 2, 2), (0, 0, 0)), "conv2": ((2, 2, 2), (0, 0, 0)), "conv3b": ((2, 2, 2), (0, 0, 0)),
              "conv4b": ((2, 2, 2), (0, 0, 0)), "conv5b": ((2, 2, 2), (0, 1, 1))}
MEAN_SHAPE = (3, 16, 128, 171)
CROP_OFFSET = (8, 29)  # Caffe centre crop of 112 from 128 x 171: ((128 - 112) // 2, (171 - 112) // 2)


def load_mean_volume(path: str | Path) -> torch.Tensor:
    """The Sports-1M mean volume as a (3, 16, 128, 171) BGR float tensor; TadInputError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise TadInputError(path, "mean file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # not an .npy file
        raise TadInputError(path, f"cannot read the mean volume as .npy ({type(exc).__name__})") from None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 5 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape == (16, 128, 171, 3):
        arr = arr.transpose(3, 0, 1, 2)
    if arr.shape != MEAN_SHAPE:
        raise TadInputError(path, f"mean volume has shape {arr.shape}, expected {MEAN_SHAPE} (C, T, H, W, BGR) "
                                  "or (16, 128, 171, 3)")
    return torch.from_numpy(np.ascontiguousarray(arr))


def crop_mean_volume(volume: torch.Tensor) -> torch.Tensor:
    """(3, 16, 128, 171) -> the (3, 16, 112, 112) centre part Caffe's crop keeps (rows 8-119, cols 29-140)."""
    top, left = CROP_OFFSET
    return volume[:, :, top:top + 112, left:left + 112]


def subtract_caffe_mean(clips: torch.Tensor, bgr_mean: torch.Tensor) -> torch.Tensor:
    """RGB 0-255 clips (B, 3, T, H, W) -> BGR minus ``bgr_mean`` ((1, 3, 1, 1, 1) or (1, 3, 16, 112, 112))."""
    bgr = clips.flip(1)
    mean = bgr_mean.to(bgr.dtype)
    if mean.shape[2] > 1 and tuple(mean.shape[2:]) != tuple(bgr.shape[2:]):
        raise TadInputError("--backbone-option mean_file", f"the mean volume needs 16 x 112 x 112 clips, "
                                                           f"got {tuple(bgr.shape[2:])}")
    return bgr - mean


@BACKBONES.register_module(name="c3d_sports1m")
class C3D(Backbone):
    """C3D feature extractor: clip (B, 3, 16, 112, 112) RGB 0-255 -> (B, 4096).

    Args:
        feature: ``"fc6"`` (default) or ``"fc7"``, both 4096-d after ReLU.
        mean_file: ``.npy`` Sports-1M mean volume (exact Caffe mean subtraction); None: per-channel mean.
        bgr_mean: per-channel B, G, R means (0-255), instead of ``mean_file``.
        init_seed: seed of the random init used without a checkpoint.
    """

    registry_name = "c3d_sports1m"
    checkpoint_ignore_prefixes = ("fc8.",)
    card = BackboneCard(
        paper="Learning Spatiotemporal Features with 3D Convolutional Networks (Tran et al., ICCV 2015)",
        input="16 x 1 @ 112^2 (from 128 x 171)", norm="BGR 0-255 minus the Sports-1M mean volume (mean_file=)",
        feature_dim=4096, gflops=77.06, checkpoints=("c3d.pickle",),
        source="DavideA/c3d-pytorch README (converted from facebook/C3D conv3d_deepnetA_sport1m_iter_1900000); "
               "needs --backbone-option mean_file=MEAN.npy (Sports-1M mean volume) or bgr_mean=(B,G,R)",
    )

    def __init__(self, feature: str = "fc6", mean_file: str | None = None,
                 bgr_mean: tuple[float, float, float] | None = None, init_seed: int = 0):
        super().__init__()
        if feature not in ("fc6", "fc7"):
            raise ValueError(f"feature must be fc6 or fc7, got {feature!r}")
        self.feature = feature
        self.spec = BackboneSpec(clip_len=16, frame_interval=1, feature_dim=4096, mean=(0.0, 0.0, 0.0),
                                 std=(1 / 255, 1 / 255, 1 / 255), short_side=128, crop=112,
                                 extra=dict(feature=feature, channel_order="BGR", mean_file=str(mean_file or "")))
        for name, c_in, c_out in CONVS:
            self.add_module(name, nn.Conv3d(c_in, c_out, 3, padding=1))
        self.fc6 = nn.Linear(8192, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        if mean_file is not None and bgr_mean is not None:
            raise TadInputError("--backbone-option", "c3d_sports1m takes mean_file or bgr_mean, not both")
        if mean_file is None and bgr_mean is None:
            mean = None  # built (e.g. for ``tad backbones``) but refuses to run: see subtract_mean
        elif mean_file is not None:
            mean = crop_mean_volume(load_mean_volume(mean_file))  # (3, 16, 112, 112) BGR
        else:
            if len(bgr_mean) != 3:
                raise TadInputError("--backbone-option", f"bgr_mean needs 3 values (B, G, R), got {bgr_mean!r}")
            mean = torch.tensor([float(v) for v in bgr_mean], dtype=torch.float32).view(3, 1, 1, 1)  # (3, 1, 1, 1) BGR
        self.register_buffer("bgr_mean", None if mean is None else mean.unsqueeze(0), persistent=False)  # (1, 3, T|1, H|1, W|1)
        self._init(init_seed)

    @torch.no_grad()
    def _init(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
                module.bias.zero_()

    def subtract_mean(self, clips: torch.Tensor) -> torch.Tensor:
        """RGB 0-255 (B, 3, T, H, W) -> BGR minus the Sports-1M mean (the official Caffe input)."""
        if self.bgr_mean is None:
            raise TadInputError("--backbone-option", "c3d_sports1m needs mean_file=PATH (the Sports-1M mean volume "
                                "as .npy, exact) or bgr_mean=(B,G,R) (per channel, 0-255); neither was given")
        return subtract_caffe_mean(clips, self.bgr_mean)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        x = self.subtract_mean(clips)
        for name, _, _ in CONVS:
            x = F.relu(getattr(self, name)(x))
            if name in POOL_AFTER:
                kernel, pad = POOL_AFTER[name]
                x = F.max_pool3d(x, kernel, stride=kernel, padding=pad)
        return [x]  # (B, 512, 1, 4, 4) at 16 x 112^2

    def forward(self, clips: torch.Tensor, spatial_grid: int | None = None) -> torch.Tensor:
        """(B, 3, 16, 112, 112) -> (B, 4096). The fc layers need the whole pool5 map: no spatial grid."""
        if spatial_grid is not None:
            raise TadInputError("--spatial-grid", "c3d_sports1m has fully connected features (fc6/fc7), no grid")
        pool5 = self.forward_maps(clips)[0]
        if pool5.shape[1:] != (512, 1, 4, 4):
            raise TadInputError("--crop", f"c3d_sports1m needs 16-frame 112 x 112 clips (pool5 512 x 1 x 4 x 4), "
                                          f"got pool5 {tuple(pool5.shape[1:])}")
        x = F.relu(self.fc6(pool5.flatten(1)))  # (B, 4096)
        if self.feature == "fc7":
            x = F.relu(self.fc7(x))  # (B, 4096)
        return x
