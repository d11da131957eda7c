"""GSF on Inception-v3 (swathikirans/GSF ``InceptionV3_gsf``), official key layout.

``gsf_inceptionv3`` is the release's ``backbones/inceptionv3_gsf.yaml`` net: the Inception-v3
trunk of ``_inceptionv3.py`` run on every frame, with a GSF module (``gsf.GSF``, on
``gsf_ch_ratio`` % of the channels) between the conv and the BN of the first unit of each of
the eleven ``mixed`` blocks: ``mixed*_conv`` (the 1x1 branch; the 3x3/2 branch in ``mixed_3``)
and ``mixed_8_tower_conv``. Those modules are keyed ``gsf_{unit}_Conv2D.*`` as in the release.
The feature is the per-frame ``top_cls_pool`` global average (2048-d) averaged over the clip,
the vector the official ``new_fc`` sees before the average consensus.

Released checkpoint (README, Google Drive): Something-Something-v1, 16 segments, InceptionV3
(53.13 % top-1). Its training code saves ``{"model_state_dict": DataParallel(VideoModel)
.state_dict(), ...}``: keys ``module.base_model.*`` and ``module.new_fc.*`` (``top_cls_fc`` is
replaced by dropout, so it has no keys). It loads here unchanged.

Test pre-processing (``test_models.py --arch inceptionv3 --input_size 0 --test_crops 1``):
short side ``229 * 256 // 224`` = 261, centre crop 229, frames **BGR 0-255** minus
(104, 117, 128), std 1 (``Stack(roll=True)``, ``GroupNormalize(div=False)``). Here the pipeline
gives RGB minus (128, 117, 104) on the 0-255 scale (spec mean (128, 117, 104) / 255, std 1/255)
and the model flips the channels to BGR. Clips: 16 frames every 4 at 30 fps (our choice, as
``gsf_r50``: the release samples 16 TSN segments over a whole Something clip).
"""
from __future__ import annotations

import torch
from torch import nn

from tad.errors import TadInputError
from tad.features.backbones._inceptionv3 import FEATURE_DIM, InceptionV3Trunk
from tad.features.backbones._resnet2d import init_temporal_resnet
from tad.features.backbones.base import BackboneCard, BackboneSpec
from tad.features.backbones.gsf import GSF
from tad.features.backbones.tsm import _as_map, _drop_prefixes, _frames_first
from tad.features.registry import BACKBONES

#: the (B, G, R) means of the BN-Inception / Inception-v3 TSN models, on the 0-255 scale
CAFFE_BGR_MEAN = (104.0, 117.0, 128.0)


#: the units the release puts GSF on (between conv and BN): the first unit of every ``mixed`` block
GSF_UNITS = frozenset([f"mixed{'' if i == 0 else f'_{i}'}_conv" for i in range(11) if i != 8] + ["mixed_8_tower_conv"])


@BACKBONES.register_module(name="gsf_inceptionv3")
class GSFInceptionV3(InceptionV3Trunk):
    """GSF-InceptionV3 feature extractor: clip (B, 3, T, H, W) (RGB, spec-normalised) -> (B, 2048).

    Args:
        gsf_ch_ratio: percentage of each GSF unit's channels GSF acts on (default 100, the released runs).
        gate_impl: the gate's 3x3x3 conv as ``"gemm"`` (default, faster on CPU) or ``"conv3d"`` (official form).
        crop: centre crop (default 229, the official test crop).
        short_side: short side before cropping (default 261 = 229 * 256 // 224).
        clip_len: frames per clip = GSF segments (default 16, as the released model).
        frame_interval: frames between sampled frames at 30 fps (default 4).
        init_seed: seed of the random init used without a checkpoint.
    """

    registry_name = "gsf_inceptionv3"
    checkpoint_ignore_prefixes = ("new_fc.", "top_cls_fc.")
    card = BackboneCard(
        paper="Gate-Shift-Fuse for Video Action Recognition (Sudhakaran, Escalera & Lanz, TPAMI 2023)",
        input="16 x 4 @ 229^2", norm="BGR 0-255 minus (104, 117, 128), std 1", feature_dim=FEATURE_DIM,
        gflops=0.0,
        checkpoints=("gsf_inceptionv3_16f_sthv1.pth.tar",),
        source="swathikirans/GSF README, Google Drive (InceptionV3 16 frames, Something-v1; the file as "
               "downloaded, any name)",
    )

    def __init__(self, gsf_ch_ratio: float = 100.0, gate_impl: str = "gemm", crop: int = 229, short_side: int = 261,
                 clip_len: int = 16, frame_interval: int = 4, init_seed: int = 0):
        super().__init__()
        if not 0 < gsf_ch_ratio <= 100:
            raise TadInputError("gsf_ch_ratio", f"must be in (0, 100], got {gsf_ch_ratio}")
        if gate_impl not in ("gemm", "conv3d"):
            raise TadInputError("gate_impl", f"must be 'gemm' or 'conv3d', got {gate_impl!r}")
        rgb_mean = tuple(v / 255.0 for v in reversed(CAFFE_BGR_MEAN))
        self.spec = BackboneSpec(clip_len=clip_len, frame_interval=frame_interval, feature_dim=FEATURE_DIM,
                                 mean=rgb_mean, std=(1 / 255, 1 / 255, 1 / 255), short_side=short_side, crop=crop,
                                 extra=dict(gsf_ch_ratio=gsf_ch_ratio, channel_order="BGR"))

        def make_temporal(unit: str, channels: int) -> nn.Module | None:
            return GSF(channels, gsf_ch_ratio, gate_impl) if unit in GSF_UNITS else None

        self._build_trunk(make_temporal)
        init_temporal_resnet(self, init_seed, None)

    def forward_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        batch, frames = clips.shape[0], clips.shape[2]
        x = self.trunk_forward(_frames_first(clips.flip(1)), frames)  # RGB -> BGR; (B*T, 2048, h, w)
        return [_as_map(x, batch)]  # (B, 2048, T, h, w)

    def convert_checkpoint_keys(self, state: dict[str, object]) -> dict[str, object]:
        """``base_model.*`` -> own keys; the classifier (``new_fc``) dropped."""
        return _drop_prefixes(state, "base_model.", self.checkpoint_ignore_prefixes)
