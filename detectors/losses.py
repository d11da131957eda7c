"""Sigmoid focal loss, 1D DIoU loss, and the EMA normaliser of the positive count.

Losses are computed in float32 whatever the autocast dtype. Both losses return the *sum*
over elements by default; the detector divides by the EMA of the number of positives
(``PositiveCountNormalizer``), which keeps the loss scale steady across batches with few
or many actions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tad.detectors.registry import MODELS


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = "sum") -> torch.Tensor:
    """FL = -alpha_t (1 - p_t)^gamma log(p_t), elementwise on logits/targets of equal shape.

    ``alpha < 0`` disables the class-balance weight.
    """
    logits = logits.float()
    targets = targets.float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return _reduce(loss, reduction)


def diou_loss_1d(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sum",
                 eps: float = 1e-8) -> torch.Tensor:
    """Distance-IoU loss of 1D segments given as (left, right) distances from a shared point.

    pred, target: (..., 2), non-negative. loss = 1 - IoU + (centre distance / enclosing length)^2.
    """
    pred = pred.float()
    target = target.float()
    pl, pr = pred[..., 0], pred[..., 1]
    tl, tr = target[..., 0], target[..., 1]
    inter = torch.minimum(pl, tl) + torch.minimum(pr, tr)
    union = (pl + pr) + (tl + tr) - inter
    iou = inter / union.clamp(min=eps)
    enclosing = torch.maximum(pl, tl) + torch.maximum(pr, tr)
    centre_gap = 0.5 * ((pr - pl) - (tr - tl))  # centre of pred minus centre of target
    loss = 1 - iou + (centre_gap / enclosing.clamp(min=eps)) ** 2
    return _reduce(loss, reduction)


@MODELS.register_module()
class SigmoidFocalLoss(nn.Module):
    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "sum"):
        super().__init__()
        self.alpha, self.gamma, self.reduction = alpha, gamma, reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return sigmoid_focal_loss(logits, targets, self.alpha, self.gamma, self.reduction)


@MODELS.register_module()
class DIoULoss1d(nn.Module):
    def __init__(self, reduction: str = "sum"):
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return diou_loss_1d(pred, target, self.reduction)


@MODELS.register_module()
class PositiveCountNormalizer(nn.Module):
    """value <- momentum * value + (1 - momentum) * max(num_pos, 1), updated in training only.

    Kept as a buffer so it is checkpointed and survives ``--resume``.
    """

    def __init__(self, init_value: float = 100.0, momentum: float = 0.9):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("value", torch.tensor(float(init_value)))

    def forward(self, num_pos: int | torch.Tensor) -> torch.Tensor:
        num_pos = torch.as_tensor(num_pos, dtype=torch.float32, device=self.value.device).clamp(min=1)
        if self.training:
            self.value.mul_(self.momentum).add_((1 - self.momentum) * num_pos)
        return self.value.clone()
