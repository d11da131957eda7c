"""GSF on BN-Inception and Inception-v3 (swathikirans/GSF ``BNInception_gsf``, ``InceptionV3_gsf``).

``gsf_bninception`` / ``gsf_inceptionv3`` are the release's ``backbones/bn_inception_gsf.yaml`` /
``inceptionv3_gsf.yaml`` nets: our trunk tables (``_bninception.py``, ``_inceptionv3.py``) run
on every frame, with a GSF module (``gsf.GSF``, on ``gsf_ch_ratio`` % of the channels) between
the conv and the BN of the first unit of every inception block, where the release puts it:
- BN-Inception (10 GSF): ``inception_{3a,3b,4a,4b,4c,4d,5a,5b}_1x1`` and the grid reductions'
  ``inception_{3c,4e}_3x3_reduce``; keys ``gsf_{unit}.*``;
- Inception-v3 (11 GSF): ``mixed{,_1,...,_10}_conv`` (the 3x3/2 conv in ``mixed_3``) and
  ``mixed_8_tower_conv``; keys ``gsf_{unit}_Conv2D.*``.
The feature is the per-frame global average (1024-d / 2048-d) averaged over the clip, the
vector the official ``new_fc`` sees before the average consensus.

Released checkpoints (README, Google Drive), Something-Something-v1, 16 segments: BNInception
(50.63 % top-1) and InceptionV3 (53.13 %). The training code saves ``{"model_state_dict":
DataParallel(VideoModel).state_dict(), ...}``: keys ``module.base_model.*`` and ``module.new_fc.*``
(the trunk's own classifier, ``fc`` / ``top_cls_fc``, is replaced by dropout, so it has no keys).
They load here unchanged.

Test pre-processing (``test_models.py --arch bninception|inceptionv3 --input_size 0
--test_crops 1``): short side ``input_size * 256 // 224``, centre crop ``input_size`` (224 for
BN-Inception, 229 for Inception-v3, so short side 256 / 261), frames **BGR 0-255** minus
(104, 117, 128), std 1 (``Stack(roll=True)``, ``GroupNormalize(div=False)``). Here the pipeline
gives RGB minus (128, 117, 104) on the 0-255 scale (spec mean (128, 117, 104) / 255, std 1/255)
and the model flips the channels to BGR. Clips: 16 frames every 4 at 30 fps (our choice, as
``gsf_r50``: the release samples 16 TSN segments over a whole Something clip).
"""
from __future__ import annotations

import torch
from torch import nn

from tad.errors import TadInputError
from tad.features.backbones._bninception import BNInceptionTrunk
from tad.features.backbones._inception import InceptionTrunk
from tad.features.backbones._inceptionv3 import InceptionV3Trunk
from tad.features.backbones._resnet2d import init_temporal_resnet
from tad.features.backbones.base import BackboneCard, BackboneSpec
from tad.features.backbones.gsf import GSF
from tad.features.backbones.tsm import _as_map, _drop_prefixes, _frames_first
from tad.features.registry import BACKBONES

#: the (B, G, R) means of the BN-Inception / Inception-v3 TSN models, on the 0-255 scale
CAFFE_BGR_MEAN = (104.0, 117.0, 128.0)
_NORM = "BGR 0-255 minus (104, 117, 128), std 1"
_PAPER = "Gate-Shift-Fuse for Video Action Recognition (Sudhakaran, Escalera & Lanz, TPAMI 2023)"
_SOURCE = "swathikirans/GSF README, Google Drive ({} 16 frames, Something-v1; the file as downloaded, any name)"


class _GSFInception(InceptionTrunk):
    """GSF on an Inception trunk: clip (B, 3, T, H, W) (RGB, spec-normalised) -> (B, FEATURE_DIM).

    Args:
        gsf_ch_ratio: percentage of each GSF unit's channels GSF acts on (default 100, the released runs).
        gate_impl: the gate's 3x3x3 conv as ``"gemm"`` (default, faster on CPU) or ``"conv3d"`` (official form).
        crop: centre crop (default ``DEFAULT_CROP``: the official ``input_size``).
        short_side: short side before cropping (default ``crop * 256 // 224``, as the official test).
        clip_len: frames per clip = GSF segments (default 16, as the released models).
        frame_interval: frames between sampled frames at 30 fps (default 4).
        init_seed: seed of the random init used without a checkpoint.
    """

    GSF_UNITS: frozenset[str] = frozenset()
    DEFAULT_CROP = 224
    checkpoint_ignore_prefixes = ("new_fc.", "fc.", "top_cls_fc.")

    def __init__(self, gsf_ch_ratio: float = 100.0, gate_impl: str = "gemm", crop: int | None = None,
                 short_side: int | None = None, clip_len: int = 16, frame_interval: int = 4, init_seed: int = 0):
        super().__init__()
        if not 0 < gsf_ch_ratio <= 100:
            raise TadInputError("gsf_ch_ratio", f"must be in (0, 100], got {gsf_ch_ratio}")
        if gate_impl not in ("gemm", "conv3d"):
            raise TadInputError("gate_impl", f"must be 'gemm' or 'conv3d', got {gate_impl!r}")
        crop = self.DEFAULT_CROP if crop is None else crop
        rgb_mean = tuple(v / 255.0 for v in reversed(CAFFE_BGR_MEAN))
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=frame_interval, feature_dim=self.FEATURE_DIM,
                                 mean=rgb_mean, std=(1 / 255, 1 / 255, 1 / 255),
                                 short_side=crop * 256 // 224 if short_side is None else short_side, crop=crop,
                                 extra=dict(gsf_ch_ratio=gsf_ch_ratio, channel_order="BGR"))

        def make_temporal(unit: str, channels: int) -> nn.Module | None:
            return GSF(channels, gsf_ch_ratio, gate_impl) if unit in self.GSF_UNITS else None

        self._build_trunk(make_temporal)
        problem = self.check_size(crop, crop)
        if problem is not None:
            raise TadInputError("crop", problem)
        init_temporal_resnet(self, init_seed, None)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        batch, frames = clips.shape[0], clips.shape[2]
        x = self.trunk_forward(_frames_first(clips.flip(1)), frames)  # RGB -> BGR; (B*T, C, h, w)
        return [_as_map(x, batch)]  # (B, C, T, h, w)

    def convert_checkpoint_keys(self, state: dict[str, object]) -> dict[str, object]:
        """``base_model.*`` -> own keys; the classifier (``new_fc``) dropped."""
        return _drop_prefixes(state, "base_model.", self.checkpoint_ignore_prefixes)


@BACKBONES.register_module(name="gsf_bninception")
class GSFBNInception(_GSFInception, BNInceptionTrunk):
    __doc__ = _GSFInception.__doc__
    registry_name = "gsf_bninception"
    GSF_UNITS = frozenset([f"inception_{b}_1x1" for b in ("3a", "3b", "4a", "4b", "4c", "4d", "5a", "5b")]
                          + ["inception_3c_3x3_reduce", "inception_4e_3x3_reduce"])
    DEFAULT_CROP = 224
    card = BackboneCard(paper=_PAPER, input="16 x 4 @ 224^2", norm=_NORM, feature_dim=1024, gflops=65.35,
                        checkpoints=("gsf_bninception_16f_sthv1.pth.tar",), source=_SOURCE.format("BNInception"))


@BACKBONES.register_module(name="gsf_inceptionv3")
class GSFInceptionV3(_GSFInception, InceptionV3Trunk):
    __doc__ = _GSFInception.__doc__
    registry_name = "gsf_inceptionv3"
    GSF_UNITS = frozenset([f"mixed{'' if i == 0 else f'_{i}'}_conv" for i in range(11) if i != 8]
                          + ["mixed_8_tower_conv"])
    DEFAULT_CROP = 229
    card = BackboneCard(paper=_PAPER, input="16 x 4 @ 229^2", norm=_NORM, feature_dim=2048, gflops=106.8,
                        checkpoints=("gsf_inceptionv3_16f_sthv1.pth.tar",), source=_SOURCE.format("InceptionV3"))
