"""FeatureDataset: any dataset of cached clip features (HDF5 store) + an annotation file.

Ground-truth segments are given in seconds by the annotation file and are mapped to the
feature grid through the store's per-clip ``timestamps`` with
:func:`tad.detectors.timeline.seconds_to_grid` (feature ``i`` sits at grid position ``i``).
No stride/fps arithmetic is involved, so features made with any clip stride, frame rate
or variable frame rate line up with the annotations.

How a video becomes model input is the config's ``strategy`` (arithmetic in
:mod:`tad.datasets.input_strategies`):

* ``'window'``: random training windows of ``max_seq_len`` steps, whole videos at test;
* ``'resize'``: every video interpolated to ``resize_length`` (default ``max_seq_len``)
  steps, with resized timestamps, in training and at test;
* ``'sliding'``: training as ``'window'``; a test item is the whole video plus
  ``data_samples['windows']``, overlapping ``[start, stop)`` ranges of ``max_seq_len``
  steps that the detector predicts one by one and merges before NMS.

``class_agnostic=True`` gives every action label 0 of one class named ``'action'`` (the
detector then only localises; classes come from an external video classifier at
evaluation, see :mod:`tad.eval.classifier_fusion`).

The dataset also owns its config keys: :meth:`FeatureDataset.fill_config` copies the
top-level data keys of a config into a loader's dataset entry, and
:meth:`FeatureDataset.check_config` checks files and sizes before training, in one line.
The engine calls both through the registry without knowing any key.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tad.datasets.input_strategies import (STRATEGIES, choose_window, resize_features, resized_timestamps,
                                           sliding_windows)
from tad.detectors.timeline import seconds_to_grid
from tad.errors import TadInputError
from tad.eval.annotations import load_annotations
from tad.eval.classifier_fusion import AGNOSTIC_CLASS
from tad.features.store import FeatureStore
from tad.registry import DATASETS

__all__ = ["FeatureDataset", "AGNOSTIC_CLASS"]

#: how many missing ids the warning lists before "..."
_MISSING_IDS_SHOWN = 5
#: top-level config key -> dataset key, copied by fill_config where the dataset leaves it unset
_TOP_LEVEL_KEYS = ("ann_file", "feature_store", "max_seq_len", "class_agnostic")


@DATASETS.register_module()
class FeatureDataset(Dataset):
    """Per-video feature sequences with ground truth in grid units.

    Args:
        ann_file: ActionFormer/ActivityNet JSON (read by ``tad.eval.annotations``), or
            ``None`` for unannotated inference (then ``classes`` is required and every
            video of the store is used).
        feature_store: HDF5 store made by ``tad extract`` / ``tad import-features``.
        subset: annotation subset to use (case-insensitive, e.g. ``'validation'``).
        classes: class names in model order; defaults to the annotation file's order.
        strategy: ``'window'``, ``'resize'`` or ``'sliding'`` (see the module docstring).
        max_seq_len: longest training window, and the sliding window, in feature steps.
        resize_length: steps every video is resized to (``'resize'``); None = ``max_seq_len``.
        window_overlap: fraction of a sliding window shared with the next (``'sliding'``).
        training: random windows and GT filtering (True) or whole videos (False).
        trunc_thresh: an action is kept in a window when at least this fraction of it
            lies inside.
        crop_ratio: ``(lo, hi)``: also crop videos shorter than ``max_seq_len`` to a
            random length in ``[lo, hi] * T`` (data augmentation), as ActionFormer.
        max_crop_tries: windows tried before accepting one without any action.
        drop_empty: in training, skip videos without any annotated segment.
        video_ids: restrict to these ids (after the subset filter).
        class_agnostic: one class (``'action'``) for every segment.
    """

    def __init__(self, ann_file: str | None, feature_store: str, subset: str | None = None,
                 classes: Sequence[str] | None = None, strategy: str = "window", max_seq_len: int = 2304,
                 resize_length: int | None = None, window_overlap: float = 0.25,
                 training: bool = True, trunc_thresh: float = 0.5,
                 crop_ratio: Sequence[float] | None = None, max_crop_tries: int = 10,
                 drop_empty: bool = True, video_ids: Sequence[str] | None = None,
                 class_agnostic: bool = False):
        if strategy not in STRATEGIES:
            raise TadInputError("strategy", f"unknown input strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
        if max_seq_len is None or int(max_seq_len) < 1:
            raise TadInputError("max_seq_len", f"must be >= 1, got {max_seq_len}")
        if resize_length is not None and int(resize_length) < 1:
            raise TadInputError("resize_length", f"must be >= 1, got {resize_length}")
        if not 0.0 <= float(window_overlap) < 1.0:
            raise TadInputError("window_overlap", f"must be in [0, 1), got {window_overlap}")
        self.ann_file = None if ann_file is None else str(ann_file)
        self.feature_store = str(feature_store)
        self.subset = subset
        self.strategy = strategy
        self.max_seq_len = int(max_seq_len)
        self.resize_length = int(resize_length) if resize_length is not None else self.max_seq_len
        self.window_overlap = float(window_overlap)
        self.training = bool(training)
        self.trunc_thresh = float(trunc_thresh)
        self.crop_ratio = None if crop_ratio is None else (float(crop_ratio[0]), float(crop_ratio[1]))
        self.max_crop_tries = int(max_crop_tries)
        self.class_agnostic = bool(class_agnostic)
        self._store = FeatureStore(self.feature_store)  # opens lazily; one handle per worker
        stored = set(self._store.videos)

        if self.ann_file is None:
            if classes is None and not self.class_agnostic:
                raise TadInputError(self.feature_store, "no annotation file given: the class names are needed")
            self.classes = [AGNOSTIC_CLASS] if self.class_agnostic else list(classes)
            self._videos = {vid: None for vid in sorted(stored)}
        else:
            self._videos = self._load_annotated(classes, stored, drop_empty and self.training)
        if video_ids is not None:
            wanted = set(video_ids)
            self._videos = {vid: v for vid, v in self._videos.items() if vid in wanted}
        self.video_ids = list(self._videos)
        if not self.video_ids:
            where = f"subset '{subset}' of {self.ann_file}" if self.ann_file else "the store"
            raise TadInputError(self.feature_store, f"no usable videos of {where} in this feature store")

    # ------------------------------------------------------------------ config hooks
    @classmethod
    def fill_config(cls, dataset_cfg: dict, cfg: Mapping, split: str) -> None:
        """Copy the config's top-level data keys into ``dataset_cfg`` where it leaves them
        unset (None or absent): ``ann_file``, ``feature_store``, ``max_seq_len``,
        ``class_agnostic`` and the subset ``<split>_subset`` (split: 'train', 'val' or 'test')."""
        for key in _TOP_LEVEL_KEYS:
            if dataset_cfg.get(key) is None and cfg.get(key) is not None:
                dataset_cfg[key] = cfg[key]
        subset = cfg.get(f"{split}_subset")
        if dataset_cfg.get("subset") is None and subset is not None:
            dataset_cfg["subset"] = subset

    @classmethod
    def check_config(cls, dataset_cfg: Mapping, cfg: Mapping, split: str) -> None:
        """Fail early, in one line, on missing data files and on class counts or feature
        sizes that disagree with ``cfg.model``."""
        for key in ("ann_file", "feature_store"):
            value = dataset_cfg.get(key)
            if value is not None and not Path(value).is_file():
                raise TadInputError(value, f"{key} not found (set it with --cfg-options {key}=PATH)")
        if split != "train":
            return
        model = cfg.get("model") or {}
        ann_file = dataset_cfg.get("ann_file")
        if ann_file and model.get("num_classes") is not None:
            if dataset_cfg.get("class_agnostic"):
                classes = [AGNOSTIC_CLASS]
            else:
                classes = dataset_cfg.get("classes") or cfg.get("classes") or load_annotations(ann_file).classes
            if len(classes) != model["num_classes"]:
                raise TadInputError(ann_file, f"{len(classes)} classes but the model has num_classes="
                                    f"{model['num_classes']} (set --cfg-options model.num_classes={len(classes)})")
        store_path = dataset_cfg.get("feature_store")
        if store_path and model.get("in_channels") is not None:
            store = FeatureStore(store_path)
            dim = store.feature_dim
            if dim != model["in_channels"]:
                raise TadInputError(store_path, f"features are {dim}-d but the model expects in_channels="
                                    f"{model['in_channels']} (set --cfg-options model.in_channels={dim})")
            grid = store.spatial_grid
            if grid is not None and model.get("spatial_grid", "unset") is None:
                raise TadInputError(store_path, f"features keep a {grid}x{grid} spatial grid but the model has "
                                    f"spatial_grid=None (set --cfg-options model.spatial_grid={grid})")

    # ------------------------------------------------------------------ setup
    def _load_annotated(self, classes, stored: set, drop_empty: bool) -> dict:
        ann = load_annotations(self.ann_file)
        videos = ann.subset(self.subset) if self.subset else dict(ann.videos)
        if not videos:
            raise TadInputError(self.ann_file, f"no videos in subset '{self.subset}'")
        if self.class_agnostic:
            self.classes = [AGNOSTIC_CLASS]
            remap = np.zeros(max(len(ann.classes), 1), dtype=np.int64)
        else:
            self.classes = list(classes) if classes is not None else list(ann.classes)
            remap = self._label_remap(ann.classes)
        missing = sorted(vid for vid in videos if vid not in stored)
        if missing:
            shown = ", ".join(missing[:_MISSING_IDS_SHOWN]) + (", ..." if len(missing) > _MISSING_IDS_SHOWN else "")
            warnings.warn(f"{self.feature_store}: {len(missing)} of {len(videos)} videos of subset "
                          f"'{self.subset}' in {self.ann_file} are missing from the store and are "
                          f"skipped ({shown})", UserWarning, stacklevel=3)
        out = {}
        for vid in sorted(videos):
            if vid not in stored:
                continue
            video = videos[vid]
            segments = np.asarray(video.segments, dtype=np.float64).reshape(-1, 2)
            labels = remap[np.asarray(video.labels, dtype=np.int64)] if len(video.labels) else \
                np.zeros(0, dtype=np.int64)
            keep = labels >= 0
            segments, labels = segments[keep], labels[keep]
            if drop_empty and len(segments) == 0:
                continue
            out[vid] = dict(segments=segments, labels=labels, duration=float(video.duration))
        return out

    def _label_remap(self, ann_classes: Sequence[str]) -> np.ndarray:
        """Annotation class id -> model class id (-1 for classes the model does not have)."""
        index = {name: i for i, name in enumerate(self.classes)}
        return np.asarray([index.get(name, -1) for name in ann_classes] or [-1], dtype=np.int64)

    @property
    def metainfo(self) -> dict:
        """Stored in checkpoints by mmengine; ``tad detect`` reads the class names from it."""
        return dict(classes=tuple(self.classes), class_agnostic=self.class_agnostic)

    def __len__(self) -> int:
        return len(self.video_ids)

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> dict:
        vid = self.video_ids[index]
        video = self._store[vid]
        feats = np.asarray(video.features)  # (T, C[, g, g])
        timestamps = np.asarray(video.timestamps, dtype=np.float64)  # (T,)
        bad = int(feats.size - np.isfinite(feats).sum())
        if bad:
            raise TadInputError(f"{self.feature_store} video {vid}",
                                f"features contain {bad} NaN/inf values; re-extract or repair this video")
        ann = self._videos[vid]
        duration = float(ann["duration"]) if ann is not None else float(video.attrs.get("duration", timestamps[-1]))
        if self.strategy == "resize":
            feats = resize_features(feats, self.resize_length)  # (N, C[, g, g])
            timestamps = resized_timestamps(timestamps, self.resize_length)  # (N,)
        if ann is not None and len(ann["segments"]):
            gt = seconds_to_grid(ann["segments"], timestamps).reshape(-1, 2)  # (N, 2) grid units
            labels = ann["labels"]
        else:
            gt, labels = np.zeros((0, 2)), np.zeros(0, dtype=np.int64)

        extra = {}
        if self.training and self.strategy in ("window", "sliding"):
            start, stop, keep = choose_window(len(timestamps), gt, self.max_seq_len, self.trunc_thresh,
                                              self.crop_ratio, self.max_crop_tries)
            feats, timestamps = feats[start:stop], timestamps[start:stop]
            gt, labels = gt[keep] - start, labels[keep]
        elif not self.training and self.strategy == "sliding" and len(timestamps) > self.max_seq_len:
            extra["windows"] = sliding_windows(len(timestamps), self.max_seq_len, self.window_overlap)
        if self.training:
            length = len(timestamps)
            gt = np.clip(gt, -0.5, length - 0.5)  # features cover half a step either side
            valid = gt[:, 1] > gt[:, 0]
            gt, labels = gt[valid], labels[valid]

        inputs = torch.from_numpy(np.ascontiguousarray(np.moveaxis(feats, 0, 1), dtype=np.float32))  # (C, T[, g, g])
        return dict(inputs=inputs, data_samples=dict(
            video_id=vid, timestamps=timestamps, duration=duration,
            gt_segments=torch.as_tensor(gt, dtype=torch.float32).reshape(-1, 2),
            gt_labels=torch.as_tensor(labels, dtype=torch.long).reshape(-1), **extra))
