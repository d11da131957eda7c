"""SlowFast's own MViT and VoV3D's own model, timed beside ours where their packages import.

The project depends on neither (SlowFast's model package imports fvcore, iopath, simplejson,
pytorchvideo and detectron2; VoV3D imports SlowFast's). Where ``slowfast`` (facebookresearch/SlowFast)
or ``vov3d`` (youngwanLEE/VoV3D) is importable, e.g. a scratch venv with their sources on the path,
``build`` makes the official model from its own Kinetics config and runs it unchanged, classifier
head included (one small matmul); elsewhere the row says why it did not run. The official models
take ``[clips]`` (a list of pathways); a thin wrapper passes it.
"""
from __future__ import annotations

from torch import nn

from backbone_rows import Variant


class _Pathways(nn.Module):
    """Calls the official model with its one-pathway list input."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clips):
        return self.model([clips])


def _cfg(get_cfg, yaml_text: str, frames: int, crop: int):
    cfg = get_cfg()
    cfg.merge_from_other_cfg(cfg.load_cfg(yaml_text))
    cfg.DATA.INPUT_CHANNEL_NUM = [3]
    cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE, cfg.NUM_GPUS = frames, crop, crop, 0
    return cfg


_MVIT = {  # the model parts of configs/Kinetics/MVIT_B_16x4_CONV.yaml / MVITv2_S_16x4.yaml
    "mvit_v1_b_16x4_slowfast": "MVIT: {SEP_POS_EMBED: True}",
    "mvit_v2_s_16x4_slowfast": "MVIT: {USE_ABS_POS: False, REL_POS_SPATIAL: True, REL_POS_TEMPORAL: True, "
                               "DIM_MUL_IN_ATT: True, RESIDUAL_POOLING: True, POOL_Q_STRIDE: [[0, 1, 1, 1], "
                               "[1, 1, 2, 2], [2, 1, 1, 1], [3, 1, 2, 2], [4, 1, 1, 1], [5, 1, 1, 1], [6, 1, 1, 1], "
                               "[7, 1, 1, 1], [8, 1, 1, 1], [9, 1, 1, 1], [10, 1, 1, 1], [11, 1, 1, 1], "
                               "[12, 1, 1, 1], [13, 1, 1, 1], [14, 1, 2, 2], [15, 1, 1, 1]]}",
}
_MVIT_COMMON = ("MODEL: {ARCH: mvit, MODEL_NAME: MViT, NUM_CLASSES: 400}\n"
                "MVIT: {DEPTH: 16, NUM_HEADS: 1, EMBED_DIM: 96, PATCH_KERNEL: [3, 7, 7], PATCH_STRIDE: [2, 4, 4], "
                "PATCH_PADDING: [1, 3, 3], MLP_RATIO: 4.0, QKV_BIAS: True, DROPPATH_RATE: 0.0, MODE: conv, "
                "CLS_EMBED_ON: True, DIM_MUL: [[1, 2.0], [3, 2.0], [14, 2.0]], HEAD_MUL: [[1, 2.0], [3, 2.0], "
                "[14, 2.0]], POOL_KVQ_KERNEL: [3, 3, 3], POOL_KV_STRIDE_ADAPTIVE: [1, 8, 8], "
                "POOL_Q_STRIDE: [[1, 1, 2, 2], [3, 1, 2, 2], [14, 1, 2, 2]]}\n")
_VOV3D = {"vov3d_m": (31, 40), "vov3d_l": (70, 48)}


def _slowfast_mvit(name: str):
    def build():
        try:
            from slowfast.config.defaults import get_cfg
            from slowfast.models.video_model_builder import MViT
        except Exception as exc:  # ImportError, or a dependency failing at import
            raise ImportError(f"SlowFast is not importable here ({type(exc).__name__}: {str(exc)[:80]})") from None
        cfg = _cfg(get_cfg, _MVIT_COMMON, 16, 224)
        cfg.merge_from_other_cfg(cfg.load_cfg(_MVIT[name]))
        return _Pathways(MViT(cfg)).eval()
    return build


def _vov3d(name: str):
    def build():
        try:
            from vov3d.config.defaults import get_cfg
            from vov3d.models.vov3d_model_builder import VoV3D
        except Exception as exc:
            raise ImportError(f"VoV3D is not importable here ({type(exc).__name__}: {str(exc)[:80]})") from None
        depth, inner = _VOV3D[name]
        yaml_text = (f"MODEL: {{ARCH: vov3d, MODEL_NAME: VoV3D, NUM_CLASSES: 400}}\nVOV3D: {{DEPTH: {depth}, "
                     f"TRANS_FUNC: t_osa_2plus1_transform, NUM_CONV: 5, INNER_CH: {inner}, "
                     "TEMPORAL_DILATIONS: [[1], [1], [1], [1]]}\n")
        return _Pathways(VoV3D(_cfg(get_cfg, yaml_text, 16, 256))).eval()
    return build


VARIANTS = [Variant(backbone=name, label="official", build=_slowfast_mvit(name),
                    note="slowfast.models.video_model_builder.MViT (unchanged)") for name in _MVIT]
VARIANTS += [Variant(backbone=name, label="official", build=_vov3d(name),
                     note="vov3d.models.vov3d_model_builder.VoV3D (unchanged)") for name in _VOV3D]
