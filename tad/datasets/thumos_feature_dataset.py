"""THUMOS14-style dataset: cached clip features (HDF5 store) + an annotation file.

Ground-truth segments are given in seconds by the annotation file and are mapped to
the feature grid through the store's per-clip ``timestamps`` with
:func:`tad.detectors.timeline.seconds_to_grid` (feature ``i`` sits at grid position
``i``). No stride/fps arithmetic is involved, so features made with any clip stride,
frame rate or variable frame rate line up with the annotations.

Training items are random windows of at most ``max_seq_len`` steps that keep the
actions having at least ``trunc_thresh`` of their length inside the window (several
tries, like ActionFormer's truncation); test items are whole videos.
"""
from __future__ import annotations

import random
import warnings
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tad.detectors.timeline import seconds_to_grid
from tad.errors import TadInputError
from tad.eval.annotations import load_annotations
from tad.features.store import FeatureStore
from tad.registry import DATASETS

#: how many missing ids the warning lists before "..."
_MISSING_IDS_SHOWN = 5


@DATASETS.register_module()
class THUMOSFeatureDataset(Dataset):
    """Per-video feature sequences with ground truth in grid units.

    Args:
        ann_file: ActionFormer/ActivityNet JSON (read by ``tad.eval.annotations``), or
            ``None`` for unannotated inference (then ``classes`` is required and every
            video of the store is used).
        feature_store: HDF5 store made by ``tad extract`` / ``tad import-features``.
        subset: annotation subset to use (case-insensitive, e.g. ``'validation'``).
        classes: class names in model order; defaults to the annotation file's order.
        max_seq_len: longest training window, in feature steps.
        training: random windows and GT filtering (True) or whole videos (False).
        trunc_thresh: an action is kept in a window when at least this fraction of it
            lies inside.
        crop_ratio: ``(lo, hi)``: also crop videos shorter than ``max_seq_len`` to a
            random length in ``[lo, hi] * T`` (data augmentation), as ActionFormer.
        max_crop_tries: windows tried before accepting one without any action.
        drop_empty: in training, skip videos without any annotated segment.
        video_ids: restrict to these ids (after the subset filter).
    """

    def __init__(self, ann_file: str | None, feature_store: str, subset: str | None = None,
                 classes: Sequence[str] | None = None, max_seq_len: int = 2304,
                 training: bool = True, trunc_thresh: float = 0.5,
                 crop_ratio: Sequence[float] | None = None, max_crop_tries: int = 10,
                 drop_empty: bool = True, video_ids: Sequence[str] | None = None):
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
        self.ann_file = None if ann_file is None else str(ann_file)
        self.feature_store = str(feature_store)
        self.subset = subset
        self.max_seq_len = int(max_seq_len)
        self.training = bool(training)
        self.trunc_thresh = float(trunc_thresh)
        self.crop_ratio = None if crop_ratio is None else (float(crop_ratio[0]), float(crop_ratio[1]))
        self.max_crop_tries = int(max_crop_tries)
        self._store = FeatureStore(self.feature_store)  # opens lazily; one handle per worker
        stored = set(self._store.videos)

        if self.ann_file is None:
            if classes is None:
                raise TadInputError(self.feature_store, "no annotation file given: the class names are needed")
            self.classes = list(classes)
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

    # ------------------------------------------------------------------ setup
    def _load_annotated(self, classes, stored: set, drop_empty: bool) -> dict:
        ann = load_annotations(self.ann_file)
        videos = ann.subset(self.subset) if self.subset else dict(ann.videos)
        if not videos:
            raise TadInputError(self.ann_file, f"no videos in subset '{self.subset}'")
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
        return dict(classes=tuple(self.classes))

    def __len__(self) -> int:
        return len(self.video_ids)

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> dict:
        vid = self.video_ids[index]
        video = self._store[vid]
        feats = np.asarray(video.features)
        timestamps = np.asarray(video.timestamps, dtype=np.float64)
        bad = int(feats.size - np.isfinite(feats).sum())
        if bad:
            raise TadInputError(f"{self.feature_store} video {vid}",
                                f"features contain {bad} NaN/inf values; re-extract or repair this video")
        ann = self._videos[vid]
        duration = float(ann["duration"]) if ann is not None else float(video.attrs.get("duration", timestamps[-1]))
        if ann is not None and len(ann["segments"]):
            gt = seconds_to_grid(ann["segments"], timestamps).reshape(-1, 2)  # (N, 2) grid units
            labels = ann["labels"]
        else:
            gt, labels = np.zeros((0, 2)), np.zeros(0, dtype=np.int64)

        if self.training:
            start, stop, keep = self._choose_window(len(timestamps), gt)
            feats, timestamps = feats[start:stop], timestamps[start:stop]
            gt, labels = gt[keep] - start, labels[keep]
            length = stop - start
            gt = np.clip(gt, -0.5, length - 0.5)  # features cover half a step either side
            valid = gt[:, 1] > gt[:, 0]
            gt, labels = gt[valid], labels[valid]

        inputs = torch.from_numpy(np.ascontiguousarray(np.moveaxis(feats, 0, 1), dtype=np.float32))  # (C, T[, g, g])
        return dict(inputs=inputs, data_samples=dict(
            video_id=vid, timestamps=timestamps, duration=duration,
            gt_segments=torch.as_tensor(gt, dtype=torch.float32).reshape(-1, 2),
            gt_labels=torch.as_tensor(labels, dtype=torch.long).reshape(-1)))

    def _choose_window(self, num_steps: int, gt: np.ndarray) -> tuple[int, int, np.ndarray]:
        """A training window ``[start, stop)`` and the mask of actions kept in it."""
        length = min(num_steps, self.max_seq_len)
        if self.crop_ratio is not None and num_steps <= self.max_seq_len:
            lo = max(1, int(round(self.crop_ratio[0] * num_steps)))
            hi = max(lo, min(num_steps, int(round(self.crop_ratio[1] * num_steps))))
            length = random.randint(lo, hi)
        if length >= num_steps:
            return 0, num_steps, np.ones(len(gt), dtype=bool)
        keep = np.zeros(len(gt), dtype=bool)
        for _ in range(max(1, self.max_crop_tries)):
            start = random.randint(0, num_steps - length)
            keep = self._kept_actions(gt, start, start + length)
            if keep.any() or len(gt) == 0:
                break
        return start, start + length, keep

    def _kept_actions(self, gt: np.ndarray, start: int, stop: int) -> np.ndarray:
        if len(gt) == 0:
            return np.zeros(0, dtype=bool)
        lo, hi = start - 0.5, stop - 0.5
        inter = np.clip(np.minimum(gt[:, 1], hi) - np.maximum(gt[:, 0], lo), 0, None)
        length = np.maximum(gt[:, 1] - gt[:, 0], 1e-6)
        return inter / length >= self.trunc_thresh
