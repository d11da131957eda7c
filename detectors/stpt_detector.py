"""STPTDetector: spatio-temporal pyramid transformer, a configuration of ``DenseDetector``.

STPT's defining design lives in its parts: the ``PyramidEncoder`` with local
spatio-temporal attention (window x g*g spatial tokens when the store keeps a grid) in
the early levels and global attention in the late levels (``attention='mixed'``), plus
optional boundary refinement (``refine=True``: ``BoundaryRefinement`` re-samples level-0
features around each coarse boundary and predicts a correction in strides).

Refined points: every point in ``mode='tensor'``, the positives in training (the only
points with a target), the post-processor's candidates at inference. Everything else --
padding, heads, assignment, losses, post-processing -- is ``DenseDetector``'s (see its
module docstring for the C4 contract).

In ``predict`` a video longer than ``max_seq_len`` is processed whole, in one pass: local
attention costs O(T * window) and the global stages run at stride >= 8 where T is small,
so a 1-hour THUMOS video (~27k steps) fits easily in memory; no sliding windows, no seams.
Items from the dataset's ``'sliding'`` strategy are predicted window by window
(``DenseDetector.predict_windows``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tad.detectors.dense_detector import DEFAULT_REGRESSION_RANGES, DenseDetector, _field, _with  # noqa: F401
from tad.detectors.registry import MODELS


@MODELS.register_module()
class STPTDetector(DenseDetector):
    """STPT: ``DenseDetector`` with the mixed local/global encoder and optional boundary refinement.

    Args:
        refine: add STPT boundary refinement (default False: on the THUMOS-shaped synthetic
            benchmark it did not pay for its 34 % extra parameters; see configs/_base_/models/stpt.py).
        refinement: config of the refinement module; default ``dict(type='BoundaryRefinement')``
            with its own defaults (``embed_dim`` forced).
        train_cfg: ``DenseDetector``'s keys plus ``refine_loss_weight`` (0.25: weight of the L1 loss
            on the refinement corrections, in strides).
        **kwargs: every other argument of ``DenseDetector`` (same defaults; encoder default
            ``PyramidEncoder`` with ``attention='mixed'``).
    """

    DEFAULT_TRAIN_CFG = dict(DenseDetector.DEFAULT_TRAIN_CFG, refine_loss_weight=0.25)

    def __init__(self, refine: bool = False, refinement: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.refine = refine
        self.refinement = (MODELS.build(_with(refinement, dict(type="BoundaryRefinement"),
                                              embed_dim=self.embed_dim))
                           if refine else None)

    def _extra_outputs(self, out: dict) -> dict:
        out["deltas"] = None
        return out

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

    def forward(self, inputs, data_samples: list | None = None, mode: str = "tensor"):
        if mode == "tensor":  # every point refined
            out = self._heads(inputs)
            return self._refine(out, out["point_mask"])
        return super().forward(inputs, data_samples, mode)

    def _extra_losses(self, out: dict, targets: dict, norm: torch.Tensor) -> dict:
        if self.refinement is None:
            return {}
        positive, reg_t, offsets = targets["positive"], targets["reg"], out["offsets"]
        out = self._refine(out, positive)
        # corrections that would move the (detached) coarse boundaries onto the truth, in strides
        target = torch.stack([offsets[..., 0].detach() - reg_t[..., 0],
                              reg_t[..., 1] - offsets[..., 1].detach()], dim=-1)
        if int(positive.sum()) > 0:
            loss = F.l1_loss(out["deltas"][positive], target[positive], reduction="sum") / norm
        else:
            # no target: a zero that still reaches every refinement parameter (DDP expects them used)
            loss = sum(p.sum() for p in self.refinement.parameters()) * 0.0
        return dict(loss_refine=loss * self.train_cfg["refine_loss_weight"])

    def _before_predict(self, out: dict) -> dict:
        if self.refinement is not None and out.get("deltas") is None:
            out = self._refine(out, self._candidates(out))
        return out
