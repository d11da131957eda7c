"""STPTDetector: spatio-temporal pyramid transformer for temporal action detection.

``forward(inputs, data_samples, mode)`` follows contract C4:

* ``inputs = dict(feats=(B, C, T) or (B, C, T, g, g), masks=(B, T) bool)`` (a bare tensor
  is taken as ``feats`` with every step valid);
* ``data_samples``: one dict per item with ``video_id``, ``timestamps`` (T,), ``duration``
  and, for training, ``gt_segments`` (N, 2) in grid units and ``gt_labels`` (N,);
* ``mode='loss'`` -> dict of scalar losses; ``'predict'`` -> one dict per item with
  ``segments`` (K, 2) in seconds, ``scores`` (K,), ``labels`` (K,); ``'tensor'`` -> raw outputs.

Any length T works: time is padded to a multiple of the coarsest stride (2**(levels-1))
here, and each local-attention level pads itself to a multiple of its window. In
``predict`` a video longer than ``max_seq_len`` is processed whole, in one pass: local
attention costs O(T * window) and the global stages run at stride >= 8 where T is small,
so a 1-hour THUMOS video (~27k steps) fits easily in memory; no sliding windows, no
seams. ``max_seq_len`` is the training crop length (the dataset crops to it). Items that
carry ``data_samples[i]['windows']`` (the dataset's ``'sliding'`` strategy, for videos of
hours) are predicted window by window instead, with one NMS over the merged candidates
(:meth:`STPTDetector.predict_windows`).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from tad.detectors.registry import MODELS

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
class STPTDetector(BaseModel):
    """See the module docstring; every key is documented in configs/_base_/models/stpt.py."""

    def __init__(self, in_channels: int = 2048, num_classes: int = 20, spatial_grid: int | None = None,
                 max_seq_len: int = 2304, embed_dim: int = 512,
                 encoder: dict | None = None, cls_head: dict | None = None, reg_head: dict | None = None,
                 assigner: dict | None = None, cls_loss: dict | None = None, reg_loss: dict | None = None,
                 refine: bool = True, refinement: dict | None = None,
                 train_cfg: dict | None = None, test_cfg: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.spatial_grid = spatial_grid
        self.max_seq_len = max_seq_len
        self.encoder = MODELS.build(_with(encoder, dict(type="PyramidEncoder"), in_channels=in_channels,
                                          embed_dim=embed_dim, spatial_grid=spatial_grid))
        self.num_levels = self.encoder.num_levels
        self.strides = [2 ** level for level in range(self.num_levels)]
        self.cls_head = MODELS.build(_with(cls_head, dict(type="ClassificationHead"),
                                           embed_dim=embed_dim, num_classes=num_classes))
        self.reg_head = MODELS.build(_with(reg_head, dict(type="RegressionHead"),
                                           embed_dim=embed_dim, num_levels=self.num_levels))
        self.assigner = MODELS.build(_with(assigner, dict(type="PointAssigner",
                                                          regression_ranges=DEFAULT_REGRESSION_RANGES,
                                                          center_sample_radius=1.5)))
        self.cls_loss = MODELS.build(_with(cls_loss, dict(type="SigmoidFocalLoss", alpha=0.25, gamma=2.0)))
        self.reg_loss = MODELS.build(_with(reg_loss, dict(type="DIoULoss1d")))
        self.refine = refine
        self.refinement = (MODELS.build(_with(refinement, dict(type="BoundaryRefinement"), embed_dim=embed_dim))
                           if refine else None)
        train_cfg = _with(train_cfg, dict(loss_normalizer=100.0, loss_normalizer_momentum=0.9, reg_loss_weight=1.0,
                                          refine_loss_weight=0.25, label_smoothing=0.0))
        self.train_cfg = train_cfg
        self.normalizer = MODELS.build(dict(type="PositiveCountNormalizer",
                                            init_value=train_cfg["loss_normalizer"],
                                            momentum=train_cfg["loss_normalizer_momentum"]))
        self.postprocessor = MODELS.build(_with(test_cfg, dict(type="SegmentPostProcessor")))

    # ------------------------------------------------------------------ core
    def _pad(self, feats: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = feats.shape[2]
        div = self.strides[-1]
        target = max(div, -(-t // div) * div)
        if target == t:
            return feats, masks
        pad = [0, 0] * (feats.dim() - 3) + [0, target - t]
        return F.pad(feats, pad), F.pad(masks, (0, target - t), value=False)

    def _heads(self, inputs) -> dict:
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
        feats, masks = self._pad(feats.float() if not feats.is_floating_point() else feats, masks)

        levels, level_masks = self.encoder(feats, masks)  # [(B, T_l, D)], [(B, T_l)]
        lengths = [x.shape[1] for x in levels]
        logits = torch.cat(self.cls_head(levels, level_masks), dim=1).float()  # (B, N, K)
        offsets = torch.cat(self.reg_head(levels, level_masks), dim=1).float()  # (B, N, 2) strides
        points = self.assigner.points(lengths, self.strides, feats.device)  # (N, 4)
        point_mask = torch.cat(level_masks, dim=1)  # (B, N)
        pos, stride = points[:, 0], points[:, 3]
        starts = pos - offsets[..., 0] * stride  # (B, N) grid, coarse
        ends = pos + offsets[..., 1] * stride
        valid = level_masks[0]  # (B, T0): the last valid step bounds the refinement samples
        steps = torch.arange(1, valid.shape[1] + 1, device=valid.device)
        valid_lengths = (valid.long() * steps).amax(dim=1).clamp(min=1)  # (B,)
        return dict(logits=logits, offsets=offsets, deltas=None, starts=starts, ends=ends,
                    points=points, point_mask=point_mask, lengths=lengths,
                    levels=levels, valid_lengths=valid_lengths)

    def _refine(self, out: dict, selected: torch.Tensor) -> dict:
        """Refine the boundaries of the ``selected`` (B, N) bool points in place.

        ``out['deltas']`` becomes (B, N, 2) corrections in strides (0 where not selected) and
        ``starts``/``ends`` the refined boundaries. The coarse boundaries are detached: the
        refinement corrects them, it does not pull the regression head.
        """
        if self.refinement is None:
            return out
        b_idx, n_idx = torch.nonzero(selected, as_tuple=True)  # (P,) each
        stride = out["points"][n_idx, 3]  # (P,)
        point_feats = torch.cat(out["levels"], dim=1)[b_idx, n_idx]  # (P, D)
        deltas_sel = self.refinement(out["levels"][0], b_idx, point_feats,
                                     out["starts"][b_idx, n_idx].detach(), out["ends"][b_idx, n_idx].detach(),
                                     stride, out["valid_lengths"]).float()  # (P, 2)
        deltas = out["offsets"].new_zeros(out["offsets"].shape).index_put((b_idx, n_idx), deltas_sel)
        stride_all = out["points"][:, 3]  # (N,)
        out["deltas"] = deltas
        out["starts"] = out["starts"] + deltas[..., 0] * stride_all
        out["ends"] = out["ends"] + deltas[..., 1] * stride_all
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

    def forward(self, inputs, data_samples: list | None = None, mode: str = "tensor"):
        if mode == "predict" and data_samples and any(_field(s, "windows") for s in data_samples):
            return self.predict_windows(inputs, data_samples)
        out = self._heads(inputs)
        if mode == "tensor":  # every point refined
            return self._refine(out, out["point_mask"])
        if mode == "loss":  # positives refined inside (the only points with a target)
            return self.loss(out, data_samples)
        if mode == "predict":  # candidates refined inside
            return self.predict(out, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    # ------------------------------------------------------------------ training
    def loss(self, out: dict, data_samples: list) -> dict:
        points, valid = out["points"], out["point_mask"]
        targets = [self.assigner.assign(points,
                                        torch.as_tensor(_field(s, "gt_segments"), dtype=torch.float32).reshape(-1, 2),
                                        torch.as_tensor(_field(s, "gt_labels"), dtype=torch.long).reshape(-1),
                                        self.num_classes)
                   for s in data_samples]
        cls_t = torch.stack([t[0] for t in targets])  # (B, N, K)
        reg_t = torch.stack([t[1] for t in targets])  # (B, N, 2)
        positive = torch.stack([t[2] for t in targets]) & valid  # (B, N)
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
        if self.refinement is not None:
            out = self._refine(out, positive)
            # corrections that would move the (detached) coarse boundaries onto the truth, in strides
            target = torch.stack([offsets[..., 0].detach() - reg_t[..., 0],
                                  reg_t[..., 1] - offsets[..., 1].detach()], dim=-1)
            if int(num_pos) > 0:
                loss_refine = F.l1_loss(out["deltas"][positive], target[positive], reduction="sum") / norm
            else:
                # no target: a zero that still reaches every refinement parameter (DDP expects them used)
                loss_refine = sum(p.sum() for p in self.refinement.parameters()) * 0.0
            losses["loss_refine"] = loss_refine * self.train_cfg["refine_loss_weight"]
        return losses

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, out: dict, data_samples: list) -> list[dict]:
        if self.refinement is not None and out["deltas"] is None:
            out = self._refine(out, self._candidates(out))
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
        feats, masks = (inputs["feats"], inputs.get("masks")) if isinstance(inputs, dict) else (inputs, None)
        if masks is None:
            masks = torch.ones(feats.shape[0], feats.shape[2], dtype=torch.bool, device=feats.device)
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
                out = self._heads(dict(feats=window_feats, masks=masks[i:i + 1, start:stop]))
                if self.refinement is not None:
                    out = self._refine(out, self._candidates(out))
                probs = torch.sigmoid(out["logits"][0])  # (N, K)
                segments = torch.stack([out["starts"][0], out["ends"][0]], dim=-1)  # (N, 2) window grid
                parts.append(self.postprocessor.candidates_in_seconds(
                    list(torch.split(probs, out["lengths"])), list(torch.split(segments, out["lengths"])),
                    list(torch.split(out["point_mask"][0], out["lengths"])), timestamps[start:stop], duration))
            seconds, scores, labels = (torch.cat([p[j] for p in parts]) for j in range(3))
            results.append(self.postprocessor.suppress(seconds, scores, labels, duration,
                                                       str(_field(sample, "video_id", ""))))
        return results
