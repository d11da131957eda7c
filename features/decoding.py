"""Forward-only, chunked video decoding with real presentation timestamps.

Why this shape:

* decord opens and validates the file and gives the frame index and times; pixels are
  pulled forward only, in runs of increasing indices, never by seeking back per clip
  (overlapping clip windows would decode every frame ``clip_len / clip_stride`` times,
  ~20x slower on long videos).
* Pixels come from ``PyAVFrameSource`` (pull-based: nothing is decoded until asked).
  decord's ``get_batch`` works too (``ChunkedFrameReader`` accepts either), but its
  decoder thread keeps decoding ahead into an unbounded queue whenever the caller
  waits, e.g. on a slower model: measured +230 MiB after 10 s of waiting on a 320x180
  video, growing with video length. Bounded memory needs the pull-based source.
* Frame times come from the container (``get_frame_timestamp``), so variable frame
  rate files map to the right seconds. A frame's duration is the gap to the next
  frame's pts (decord's own end times assume a constant rate); the last frame keeps
  the container's duration.
* ``--fps F`` resamples by time: the k-th output frame is the source frame showing
  at ``t0 + k / F`` (``t0`` = first pts); no re-encoding, no temporary files.
* Resizing is done by decord at decode time (``width``/``height``), which is much
  cheaper than decoding full size and resizing afterwards.

This module imports no torch: it runs inside the decoding worker processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tad.errors import TadInputError

__all__ = [
    "FrameTimeline",
    "ChunkedFrameReader",
    "PyAVFrameSource",
    "open_video",
    "frame_times",
    "resample_timeline",
    "native_size",
]


def open_video(path: str | os.PathLike, width: int = -1, height: int = -1, num_threads: int = 1):
    """A decord ``VideoReader`` at ``width`` x ``height`` (-1: native). TadInputError if unreadable."""
    import decord

    path = os.fspath(path)
    if not os.path.exists(path):
        raise TadInputError(path, "no such file")
    if not os.access(path, os.R_OK):
        raise TadInputError(path, "permission denied (file is not readable)")
    if os.path.getsize(path) == 0:
        raise TadInputError(path, "empty file (0 bytes)")
    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), width=width, height=height, num_threads=num_threads)
    except Exception as exc:  # decord raises DECORDError / RuntimeError with multi-line C++ text
        detail = _first_line(exc).replace(path, "file")
        raise TadInputError(path, f"cannot decode as video ({detail})") from None
    if len(reader) == 0:
        raise TadInputError(path, "video has no frames")
    return reader


def native_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the first frame as decoded."""
    reader = open_video(path)
    height, width = reader[0].shape[:2]
    return int(width), int(height)


@dataclass
class FrameTimeline:
    """Which source frame feeds each output frame, and when that output frame shows.

    ``source_index[k]`` is the decoded frame index; ``times[k]`` its start in seconds,
    ``durations[k]`` how long it shows. Source indices never decrease.
    """

    source_index: np.ndarray  # (K,) int64
    times: np.ndarray  # (K,) float64 seconds
    durations: np.ndarray  # (K,) float64 seconds

    def __len__(self) -> int:
        return len(self.source_index)


def frame_times(reader) -> tuple[np.ndarray, np.ndarray]:
    """Presentation time and on-screen duration (seconds, float64) of every frame."""
    stamps = np.asarray(reader.get_frame_timestamp(np.arange(len(reader))), dtype=np.float64)  # (N, 2)
    pts = stamps[:, 0]
    if len(pts) > 1 and np.any(np.diff(pts) <= 0):
        # Broken index (non-monotonic pts): keep order, force strictly increasing times.
        pts = np.maximum.accumulate(pts)
        bump = np.cumsum(np.r_[0.0, (np.diff(pts) <= 0).astype(np.float64)]) * 1e-6
        pts = pts + bump
    durations = np.empty_like(pts)
    durations[:-1] = np.diff(pts)
    last = stamps[-1, 1] - stamps[-1, 0]
    if not np.isfinite(last) or last <= 0:
        last = float(np.median(durations[:-1])) if len(pts) > 1 else 1.0 / max(float(reader.get_avg_fps()), 1e-6)
    durations[-1] = last
    return pts, durations


def resample_timeline(pts: np.ndarray, durations: np.ndarray, fps: float | str | None) -> FrameTimeline:
    """Output frames at ``fps`` chosen by time; ``None``/``'native'`` keeps every frame."""
    pts = np.asarray(pts, dtype=np.float64)
    durations = np.asarray(durations, dtype=np.float64)
    if fps is None or fps == "native":
        return FrameTimeline(np.arange(len(pts), dtype=np.int64), pts.copy(), durations.copy())
    fps = float(fps)
    if not fps > 0:
        raise TadInputError("--fps", f"must be positive or 'native', got {fps}")
    step = 1.0 / fps
    # container times are rounded (decord returns float32 seconds): tolerate a little
    eps = min(1e-3, 0.25 * step)
    start, end = pts[0], pts[-1] + durations[-1]
    count = max(1, int(np.floor((end - start - eps) / step)) + 1)
    times = start + np.arange(count, dtype=np.float64) * step
    source = np.searchsorted(pts, times + eps, side="right") - 1
    source = np.clip(source, 0, len(pts) - 1).astype(np.int64)
    return FrameTimeline(source, times, np.full(count, step))


class ChunkedFrameReader:
    """Serves runs of output frames ``[a, b)`` in increasing order, decoding each source
    frame once: frames of the previous run that overlap the next are kept, the rest is
    read with one ``get_batch`` per chunk of at most ``chunk_size`` source frames.

    ``crop`` (optional) maps an (n, H, W, 3) uint8 array to its cropped view.
    Memory held: one run of frames.
    """

    def __init__(self, reader, source_index: np.ndarray, chunk_size: int = 128, crop=None):
        self.reader = reader
        self.source_index = np.asarray(source_index, dtype=np.int64)
        self.chunk_size = max(1, int(chunk_size))
        self.crop = crop
        self._start = 0  # output position of self._frames[0]
        self._frames: np.ndarray | None = None  # (n, h, w, 3) uint8

    def get(self, a: int, b: int) -> np.ndarray:
        """Output frames ``a <= k < b`` as an (b - a, h, w, 3) uint8 array."""
        if a < self._start:
            raise ValueError(f"forward-only reader: asked for frame {a} after {self._start}")
        kept = None
        first_new = a
        if self._frames is not None:
            cached_end = self._start + len(self._frames)
            if a < cached_end:
                kept = self._frames[a - self._start : min(b, cached_end) - self._start]
                first_new = min(b, cached_end)
        parts = [kept] if kept is not None and len(kept) else []
        if first_new < b:
            parts.append(self._decode(self.source_index[first_new:b]))
        frames = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        self._start, self._frames = a, frames
        return frames

    def _decode(self, wanted: np.ndarray) -> np.ndarray:
        """Frames for source indices ``wanted`` (non-decreasing, may repeat)."""
        unique, inverse = np.unique(wanted, return_inverse=True)
        chunks = []
        for lo in range(0, len(unique), self.chunk_size):
            batch = self.reader.get_batch(unique[lo : lo + self.chunk_size].tolist())  # (n, H, W, 3)
            batch = batch.asnumpy() if hasattr(batch, "asnumpy") else batch
            if self.crop is not None:
                batch = self.crop(batch)
            chunks.append(np.ascontiguousarray(batch))
        decoded = chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=0)
        return decoded if len(unique) == len(wanted) else decoded[inverse]


class PyAVFrameSource:
    """Forward-only RGB frames by index, decoded on demand with PyAV at ``width`` x ``height``.

    Indices are those of decord's frame index (``pts``): each decoded frame is placed by
    its own presentation time; a frame the decoder never outputs (e.g. one cut by an
    edit list) is served by the last frame shown before it. Holds one decoded frame.
    """

    def __init__(self, path: str | os.PathLike, pts: np.ndarray, width: int, height: int, threads: int = 1):
        import av

        self.pts = np.asarray(pts, dtype=np.float64)
        self.width, self.height = int(width), int(height)
        self._container = av.open(os.fspath(path))
        stream = self._container.streams.video[0]
        stream.codec_context.thread_count = max(1, int(threads))
        self._frames = self._container.decode(stream)
        self._tolerance = 0.5 * float(np.min(np.diff(self.pts))) if len(self.pts) > 1 else 1.0
        self._prev = None  # (index, av frame) last frame before the current one
        self._cur = None  # (index, av frame) or None when exhausted
        self._last_asked = -1
        self._advance()

    def _advance(self) -> None:
        self._prev = self._cur if self._cur is not None else self._prev
        try:
            frame = next(self._frames)
        except StopIteration:
            self._cur = None
            return
        if frame.time is None:
            index = (self._prev[0] + 1) if self._prev is not None else 0
        else:
            index = int(np.searchsorted(self.pts, frame.time - self._tolerance))
        self._cur = (index, frame)

    def _rgb(self, frame) -> np.ndarray:
        return frame.to_ndarray(width=self.width, height=self.height, format="rgb24")  # (h, w, 3)

    def get_batch(self, indices) -> np.ndarray:
        """(n, height, width, 3) uint8 for increasing ``indices``."""
        out = []
        for k in indices:
            if k < self._last_asked:
                raise ValueError(f"forward-only source: frame {k} asked after {self._last_asked}")
            self._last_asked = k
            while self._cur is not None and self._cur[0] < k:
                self._advance()
            if self._cur is not None and (self._cur[0] == k or self._prev is None):
                out.append(self._rgb(self._cur[1]))
            elif self._prev is not None:
                out.append(self._rgb(self._prev[1]))
            else:
                raise ValueError("the decoder returned no frames")
        return np.stack(out)

    def close(self) -> None:
        self._container.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("["):
            return line[:200]
    return type(exc).__name__
