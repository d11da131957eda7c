"""Where extracted features go: the ``FeatureSink`` protocol and an in-memory sink.

The extraction pipeline (``tad.features.extract``) hands each finished video to a sink:

* ``completed`` -- ids already done (skipped: resume after a crash);
* ``write_video(vid, features, timestamps, attrs)`` -- one whole video, features
  (T, C[, g, g]) and clip centre times (T,) in seconds;
* ``mark_failed(key, reason)`` -- a video that could not be read (one-line reason);
* ``finalize()`` -- the run is over.

``FeatureStoreWriter`` (``tad.features.store_writer``, the HDF5 store) is one sink;
``MemorySink`` keeps the videos in a dict (``tad detect``: no temporary file).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

__all__ = ["FeatureSink", "MemorySink", "VideoFeatures"]


@runtime_checkable
class FeatureSink(Protocol):
    @property
    def completed(self) -> set[str]: ...

    def write_video(self, vid: str, features: np.ndarray, timestamps: np.ndarray,
                    attrs: Mapping[str, Any] | None = None) -> None: ...

    def mark_failed(self, vid_or_path: str, reason: object) -> None: ...

    def finalize(self) -> Any: ...


@dataclass
class VideoFeatures:
    features: np.ndarray  # (T, C[, g, g])
    timestamps: np.ndarray  # (T,) float64 seconds
    attrs: dict = field(default_factory=dict)


class MemorySink:
    """Keeps every video's features in memory: ``sink.videos[vid] -> VideoFeatures``.

    Args:
        meta: what a store would record as its metadata (backbone, options); kept as ``meta``.
    """

    def __init__(self, meta: Mapping[str, Any] | None = None):
        self.meta = dict(meta or {})
        self.videos: dict[str, VideoFeatures] = {}
        self.failed: dict[str, str] = {}
        self.finalized = False

    @property
    def completed(self) -> set[str]:
        return set(self.videos)

    def write_video(self, vid: str, features: np.ndarray, timestamps: np.ndarray,
                    attrs: Mapping[str, Any] | None = None) -> None:
        self.videos[vid] = VideoFeatures(np.asarray(features), np.asarray(timestamps, dtype=np.float64),
                                         dict(attrs or {}))

    def mark_failed(self, vid_or_path: str, reason: object) -> None:
        self.failed[str(vid_or_path)] = str(reason)

    def finalize(self) -> "MemorySink":
        self.finalized = True
        return self
