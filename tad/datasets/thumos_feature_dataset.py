"""Deprecated: ``THUMOSFeatureDataset`` is :class:`tad.datasets.feature_dataset.FeatureDataset`.

Old configs with ``dataset=dict(type='THUMOSFeatureDataset', ...)`` keep working (every
argument is the same; the strategy is ``'window'``); new configs use ``'FeatureDataset'``.
"""
from __future__ import annotations

import warnings

from tad.datasets.feature_dataset import FeatureDataset
from tad.registry import DATASETS

__all__ = ["THUMOSFeatureDataset"]


@DATASETS.register_module()
class THUMOSFeatureDataset(FeatureDataset):
    """Deprecated alias of :class:`FeatureDataset` (same arguments)."""

    def __init__(self, *args, **kwargs):
        warnings.warn("THUMOSFeatureDataset is deprecated: use type='FeatureDataset' (same arguments, "
                      "plus strategy='window'|'resize'|'sliding')", DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)
