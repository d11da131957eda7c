"""Batching variable-length feature sequences: zero padding plus a validity mask."""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS

from tad.registry import FUNCTIONS


@FUNCTIONS.register_module()
def tad_collate(batch: Sequence[dict]) -> dict:
    """Items ``dict(inputs=(C, T_i[, g, g]), data_samples=dict)`` -> one batch.

    Returns ``dict(inputs=dict(feats=(B, C, T_max[, g, g]), masks=(B, T_max) bool),
    data_samples=[dict, ...])``; ``masks`` is True on real steps, False on padding.
    """
    if len(batch) == 0:
        raise ValueError("tad_collate got an empty batch")
    first = batch[0]["inputs"]
    lengths = [item["inputs"].shape[1] for item in batch]
    for item in batch:
        x = item["inputs"]
        if x.dim() != first.dim() or x.shape[0] != first.shape[0] or x.shape[2:] != first.shape[2:]:
            raise ValueError(f"tad_collate: item shapes differ beyond time: {tuple(first.shape)} vs {tuple(x.shape)}")
    max_len = max(lengths)
    feats = first.new_zeros((len(batch), first.shape[0], max_len, *first.shape[2:]))  # (B, C, T[, g, g])
    masks = torch.zeros(len(batch), max_len, dtype=torch.bool)  # (B, T)
    for i, (item, length) in enumerate(zip(batch, lengths)):
        feats[i, :, :length] = item["inputs"]
        masks[i, :length] = True
    return dict(inputs=dict(feats=feats, masks=masks), data_samples=[item["data_samples"] for item in batch])


# mmengine's Runner looks collate functions up in its root registry without switching
# to the 'tad' scope, so the bare name ``dict(type='tad_collate')`` must live there too.
MMENGINE_FUNCTIONS.register_module(name="tad_collate", module=tad_collate, force=True)
