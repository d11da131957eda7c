"""DenseDetector: the base class of every dense (one prediction per pyramid step) detector.

One pass is five stages, each a registered, config-built part:

1. **pad**: time is padded to a multiple of the coarsest stride (any input length works);
2. **encoder**: ``encoder(feats, mask) -> ([(B, T_l, D)], [(B, T_l)])``, one entry per pyramid
   level; level l's step i sits at input grid position ``i * strides[l]`` (``encoder.strides``
   if it has one, else ``2 ** l``);
3. **heads**: ``cls_head(levels, masks) -> [(B, T_l, K)]`` logits and
   ``reg_head(levels, masks) -> [(B, T_l, 2)]`` non-negative (start, end) distances in strides;
4. **assignment/losses** (``mode='loss'``): ``assigner`` gives each point its class and
   distance targets; ``cls_loss`` and ``reg_loss`` are summed and divided by the EMA of the
   positive count;
5. **post-processing** (``mode='predict'``): ``test_cfg`` (a ``SegmentPostProcessor``) turns
   per-level scores and segments into scored segments in seconds.

``forward(inputs, data_samples, mode)`` follows contract C4:

* ``inputs = dict(feats=(B, C, T) or (B, C, T, g, g), masks=(B, T) bool)`` (a bare tensor
  is taken as ``feats`` with every step valid);
* ``data_samples``: one dict per item with ``video_id``, ``timestamps`` (T,), ``duration``
  and, for training, ``gt_segments`` (N, 2) in grid units and ``gt_labels`` (N,);
* ``mode='loss'`` -> dict of scalar losses; ``'predict'`` -> one dict per item with
  ``segments`` (K, 2) in seconds, ``scores`` (K,), ``labels`` (K,); ``'tensor'`` -> raw outputs.

Subclasses add stages through three hooks: ``_extra_outputs`` (after the heads),
``_extra_losses`` (after the main losses) and ``_before_predict`` (before post-processing);
see ``STPTDetector`` (boundary refinement). New encoders and heads need no subclass: they
are config entries (``encoder=dict(type=...)``, ``reg_head=dict(type=...)``).

Defaults live in one place: each part's constructor. This class supplies only the part
``type`` and the detector-wide keys it forces into the parts (``embed_dim``,
``in_channels``, ``num_classes``, ``num_levels``, ``spatial_grid``).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from tad.detectors.registry import MODELS

#: one (lo, hi) range in input grid steps per level of the default 6-level pyramid
DEFAULT_REGRESSION_RANGES = [(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)]


def _field(sample: Any, key: str, default=None):
    if isinstance(sample, dict):
        return sample.get(key, default)
    return getattr(sample, key, default)


def _with(cfg: dict | None, defaults: dict, **forced) -> dict:
    """Config dict with defaults filled in and the detector-wide keys forced."""
    out = dict(defaults)
    out.update(copy.deepcopy(cfg or {}))
    out.update(forced)
    return out


@MODELS.register_module()
class DenseDetector(BaseModel):
    """Dense temporal action detector: pad -> encoder -> heads -> assignment/losses -> post-processing.

    Args:
        in_channels: feature channels C of the store (features (T, C) or (T, C, g, g)).
        num_classes: action classes K (sigmoid scores per class).
        spatial_grid: g when the store keeps a g x g spatial grid, else None (forced into the encoder).
        max_seq_len: training crop length in feature steps (the dataset crops to it); prediction runs
            on whole videos of any length in one pass.
        embed_dim: width D of the encoder and the heads (forced into every part).
        encoder: config of the encoder; default ``dict(type='PyramidEncoder')`` with its own defaults.
        cls_head: config of the classification head; default ``dict(type='ClassificationHead')``.
        reg_head: config of the regression head; default ``dict(type='RegressionHead')``.
        assigner: config of the point assigner; default ``PointAssigner`` with one regression range
            per level of the 6-level pyramid (``DEFAULT_REGRESSION_RANGES``).
        cls_loss: classification loss; default ``SigmoidFocalLoss`` (alpha 0.25, gamma 2).
        reg_loss: regression loss; default ``DIoULoss1d``.
        train_cfg: ``loss_normalizer`` (100.0: initial EMA of the positive count),
            ``loss_normalizer_momentum`` (0.9), ``reg_loss_weight`` (1.0), ``label_smoothing`` (0.0);
            subclasses add their own keys (``DEFAULT_TRAIN_CFG``).
        test_cfg: post-processor config; default ``dict(type='SegmentPostProcessor')``.
        data_preprocessor: mmengine data preprocessor config (None: the identity).
        init_cfg: mmengine init config.
    """

    DEFAULT_TRAIN_CFG = dict(loss_normalizer=100.0, loss_normalizer_momentum=0.9, reg_loss_weight=1.0,
                             label_smoothing=0.0)

    def __init__(self, in_channels: int = 2048, num_classes: int = 20, spatial_grid: int | None = None,
                 max_seq_len: int = 2304, embed_dim: int = 512,
                 encoder: dict | None = None, cls_head: dict | None = None, reg_head: dict | None = None,
                 assigner: dict | None = None, cls_loss: dict | None = None, reg_loss: dict | None = None,
                 train_cfg: dict | None = None, test_cfg: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.spatial_grid = spatial_grid
        self.max_seq_len = max_seq_len
        self.embed_dim = embed_dim
        self.encoder = MODELS.build(_with(encoder, dict(type="PyramidEncoder"), in_channels=in_channels,
                                          embed_dim=embed_dim, spatial_grid=spatial_grid))
        self.num_levels = self.encoder.num_levels
        self.strides = list(getattr(self.encoder, "strides", None) or [2 ** level for level in range(self.num_levels)])
        self.cls_head = MODELS.build(_with(cls_head, dict(type="ClassificationHead"),
                                           embed_dim=embed_dim, num_classes=num_classes))
        self.reg_head = MODELS.build(_with(reg_head, dict(type="RegressionHead"),
                                           embed_dim=embed_dim, num_levels=self.num_levels))
        self.assigner = MODELS.build(_with(assigner, dict(type="PointAssigner",
                                                          regression_ranges=DEFAULT_REGRESSION_RANGES)))
        self.cls_loss = MODELS.build(_with(cls_loss, dict(type="SigmoidFocalLoss")))
        self.reg_loss = MODELS.build(_with(reg_loss, dict(type="DIoULoss1d")))
        self.train_cfg = _with(train_cfg, self.DEFAULT_TRAIN_CFG)
        self.normalizer = MODELS.build(dict(type="PositiveCountNormalizer",
                                            init_value=self.train_cfg["loss_normalizer"],
                                            momentum=self.train_cfg["loss_normalizer_momentum"]))
        self.postprocessor = MODELS.build(_with(test_cfg, dict(type="SegmentPostProcessor")))

    # ------------------------------------------------------------------ stages
    def _pad(self, feats: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad time to a multiple of the coarsest stride (masked as invalid)."""
        t = feats.shape[2]
        div = self.strides[-1]
        target = max(div, -(-t // div) * div)
        if target == t:
            return feats, masks
        pad = [0, 0] * (feats.dim() - 3) + [0, target - t]
        return F.pad(feats, pad), F.pad(masks, (0, target - t), value=False)

    def _inputs(self, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked, padded (feats (B, C, T'[, g, g]), masks (B, T')) from C4 ``inputs``."""
        if isinstance(inputs, dict):
            feats, masks = inputs["feats"], inputs.get("masks")
        else:
            feats, masks = inputs, None
        if feats.dim() not in (3, 5):
            raise ValueError(f"feats must be (B, C, T) or (B, C, T, g, g), got shape {tuple(feats.shape)}")
        if feats.shape[1] != self.in_channels:
            raise ValueError(f"feats have {feats.shape[1]} channels but the model expects "
                             f"in_channels={self.in_channels}")
        if masks is None:
            masks = torch.ones(feats.shape[0], feats.shape[2], dtype=torch.bool, device=feats.device)
        masks = masks.to(device=feats.device, dtype=torch.bool)
        return self._pad(feats.float() if not feats.is_floating_point() else feats, masks)

    def _heads(self, inputs) -> dict:
        """pad -> encoder -> heads; decoded coarse boundaries of every point, in grid units."""
        feats, masks = self._inputs(inputs)
        levels, level_masks = self.encoder(feats, masks)  # [(B, T_l, D)], [(B, T_l)]
        lengths = [x.shape[1] for x in levels]
        logits = torch.cat(self.cls_head(levels, level_masks), dim=1).float()  # (B, N, K)
        offsets = torch.cat(self.reg_head(levels, level_masks), dim=1).float()  # (B, N, 2) strides
        points = self.assigner.points(lengths, self.strides, feats.device)  # (N, 4)
        point_mask = torch.cat(level_masks, dim=1)  # (B, N)
        pos, stride = points[:, 0], points[:, 3]
        starts = pos - offsets[..., 0] * stride  # (B, N) grid
        ends = pos + offsets[..., 1] * stride
        valid = level_masks[0]  # (B, T0)
        steps = torch.arange(1, valid.shape[1] + 1, device=valid.device)
        valid_lengths = (valid.long() * steps).amax(dim=1).clamp(min=1)  # (B,) last valid step + 1
        out = dict(logits=logits, offsets=offsets, starts=starts, ends=ends, points=points,
                   point_mask=point_mask, lengths=lengths, levels=levels, valid_lengths=valid_lengths)
        return self._extra_outputs(out)

    def _extra_outputs(self, out: dict) -> dict:
        """Hook: add outputs after the heads (default: none)."""
        return out

    def forward(self, inputs, data_samples: list | None = None, mode: str = "tensor"):
        if mode == "predict" and data_samples and any(_field(s, "windows") for s in data_samples):
            return self.predict_windows(inputs, data_samples)
        out = self._heads(inputs)
        if mode == "tensor":
            return out
        if mode == "loss":
            return self.loss(out, data_samples)
        if mode == "predict":
            return self.predict(out, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    # ------------------------------------------------------------------ training
    def targets(self, out: dict, data_samples: list) -> dict:
        """Assigned targets of every point: cls (B, N, K), reg (B, N, 2) strides, positive (B, N)."""
        points, valid = out["points"], out["point_mask"]
        assigned = [self.assigner.assign(points,
                                         torch.as_tensor(_field(s, "gt_segments"), dtype=torch.float32).reshape(-1, 2),
                                         torch.as_tensor(_field(s, "gt_labels"), dtype=torch.long).reshape(-1),
                                         self.num_classes)
                    for s in data_samples]
        return dict(cls=torch.stack([t[0] for t in assigned]), reg=torch.stack([t[1] for t in assigned]),
                    positive=torch.stack([t[2] for t in assigned]) & valid)

    def loss(self, out: dict, data_samples: list) -> dict:
        targets = self.targets(out, data_samples)
        cls_t, reg_t, positive = targets["cls"], targets["reg"], targets["positive"]
        valid = out["point_mask"]
        num_pos = positive.sum()
        norm = self.normalizer(num_pos.detach())
        smoothing = self.train_cfg["label_smoothing"]
        if smoothing > 0:
            cls_t = cls_t * (1 - smoothing) + smoothing / (self.num_classes + 1)
        logits, offsets = out["logits"], out["offsets"]
        loss_cls = self.cls_loss(logits[valid], cls_t[valid]) / norm
        if int(num_pos) > 0:
            loss_reg = self.reg_loss(offsets[positive], reg_t[positive]) / norm
        else:
            loss_reg = offsets.sum() * 0.0
        losses = dict(loss_cls=loss_cls, loss_reg=loss_reg * self.train_cfg["reg_loss_weight"])
        losses.update(self._extra_losses(out, targets, norm))
        return losses

    def _extra_losses(self, out: dict, targets: dict, norm: torch.Tensor) -> dict:
        """Hook: more losses from the outputs and the assigned targets (default: none)."""
        return {}

    # ------------------------------------------------------------------ inference
    def _before_predict(self, out: dict) -> dict:
        """Hook: adjust the outputs before post-processing (default: none)."""
        return out

    def _candidates(self, out: dict) -> torch.Tensor:
        """(B, N) bool: the points the post-processor can pick (best class probability above
        ``pre_nms_thresh``, among the ``pre_nms_topk`` best of their level)."""
        best = torch.sigmoid(out["logits"].max(dim=-1).values) * out["point_mask"]  # (B, N)
        thresh = getattr(self.postprocessor, "pre_nms_thresh", 0.0)
        topk = getattr(self.postprocessor, "pre_nms_topk", None)
        selected = best > thresh
        if topk is not None:
            start = 0
            for length in out["lengths"]:
                if length > topk:
                    level = best[:, start:start + length]
                    kth = torch.topk(level, topk, dim=1).values[:, -1:]  # (B, 1)
                    selected[:, start:start + length] &= level >= kth
                start += length
        return selected

    @torch.no_grad()
    def predict(self, out: dict, data_samples: list) -> list[dict]:
        out = self._before_predict(out)
        probs = torch.sigmoid(out["logits"])  # (B, N, K)
        segments = torch.stack([out["starts"], out["ends"]], dim=-1)  # (B, N, 2) grid
        results = []
        for i, sample in enumerate(data_samples):
            timestamps = _field(sample, "timestamps")
            if timestamps is None:
                raise ValueError("predict needs data_samples[i]['timestamps'] to map the grid to seconds")
            duration = _field(sample, "duration")
            if duration is None:
                duration = float("inf")
            probs_l = torch.split(probs[i], out["lengths"])
            segs_l = torch.split(segments[i], out["lengths"])
            masks_l = torch.split(out["point_mask"][i], out["lengths"])
            results.append(self.postprocessor(list(probs_l), list(segs_l), list(masks_l), timestamps,
                                              float(duration), str(_field(sample, "video_id", ""))))
        return results

    @torch.no_grad()
    def predict_windows(self, inputs, data_samples: list) -> list[dict]:
        """Predict items whose ``data_samples[i]['windows']`` lists overlapping ``[start, stop)``
        step ranges (the dataset's ``'sliding'`` strategy): every window goes through the
        network on its own, the candidates of all windows of a video are mapped to seconds
        and merged, then suppressed by one NMS. Items without windows are predicted whole."""
        feats, masks = self._inputs(inputs)
        results = []
        for i, sample in enumerate(data_samples):
            length = int(masks[i].sum())
            windows = _field(sample, "windows") or [(0, length)]
            timestamps = np.asarray(_field(sample, "timestamps"), dtype=np.float64)
            duration = _field(sample, "duration")
            duration = float("inf") if duration is None else float(duration)
            parts = []
            for start, stop in windows:
                window_feats = feats[i:i + 1, :, start:stop]  # (1, C, L[, g, g])
                out = self._before_predict(self._heads(dict(feats=window_feats, masks=masks[i:i + 1, start:stop])))
                probs = torch.sigmoid(out["logits"][0])  # (N, K)
                segments = torch.stack([out["starts"][0], out["ends"][0]], dim=-1)  # (N, 2) window grid
                parts.append(self.postprocessor.candidates_in_seconds(
                    list(torch.split(probs, out["lengths"])), list(torch.split(segments, out["lengths"])),
                    list(torch.split(out["point_mask"][0], out["lengths"])), timestamps[start:stop], duration))
            seconds, scores, labels = (torch.cat([p[j] for p in parts]) for j in range(3))
            results.append(self.postprocessor.suppress(seconds, scores, labels, duration,
                                                       str(_field(sample, "video_id", ""))))
        return results
