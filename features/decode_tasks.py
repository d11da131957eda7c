"""One video's decoding as a task: open, frame times, resample, clip windows, runs of frames.

``decode_messages(DecodeTask)`` yields the typed records of ``tad.features.worker_messages``;
it runs inside a decoder worker process (``tad.features.decoder_pool``) or inline, and
imports no torch. A run of frames holds every clip it completes, so overlapping clips
never cost extra decoding or transfer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tad.errors import TadInputError
from tad.features.clip_sampling import clip_windows
from tad.features.decoding import ChunkedFrameReader, PyAVFrameSource, frame_times, open_video, resample_timeline
from tad.features.frame_transforms import FrameGeometry
from tad.features.worker_messages import FrameRun, VideoEnded, VideoStarted, WorkerMessage

__all__ = ["DecodeTask", "decode_messages", "one_line"]


@dataclass
class DecodeTask:
    task_id: int
    vid: str
    path: str
    fps: float | str | None
    clip_len: int
    frame_interval: int
    clip_stride: int
    geometry: FrameGeometry
    chunk_frames: int = 128
    decoder: str = "pyav"


def decode_messages(task: DecodeTask) -> Iterator[WorkerMessage]:
    """Messages for one video: ``VideoStarted``, ``FrameRun``..., ``VideoEnded``
    (see ``tad.features.worker_messages``). Raises on a bad video."""
    reader = open_video(task.path)
    pts, durations = frame_times(reader)
    num_frames, native_fps = len(reader), float(reader.get_avg_fps())
    height, width = reader[0].shape[:2]
    out_w, out_h = task.geometry.decode_size(width, height)
    del reader
    if task.decoder == "decord":
        source = open_video(task.path, width=out_w, height=out_h)
    else:  # pull-based: bounded memory, see tad.features.decoding
        source = PyAVFrameSource(task.path, pts, out_w, out_h)
    timeline = resample_timeline(pts, durations, task.fps)
    windows = clip_windows(len(timeline), task.clip_len, task.frame_interval, task.clip_stride)
    timestamps = windows.centres(timeline.times, timeline.durations)  # (T,)
    stat = os.stat(task.path)
    attrs = dict(fps=native_fps, num_frames=int(num_frames), duration=float(pts[-1] + durations[-1]),
                 source_path=str(Path(task.path).resolve()), source_size=int(stat.st_size),
                 source_mtime=float(stat.st_mtime), padded=bool(windows.padded))
    yield VideoStarted(task.task_id, len(windows), timestamps, attrs)

    frames_reader = ChunkedFrameReader(source, timeline.source_index, chunk_size=task.chunk_frames,
                                       crop=task.geometry.crop_frames)
    span = int(windows.last[0] - windows.first[0]) + 1
    per_run = max(1, (max(task.chunk_frames, span) - span) // task.clip_stride + 1)
    for c0 in range(0, len(windows), per_run):
        c1 = min(len(windows), c0 + per_run)
        rows = windows.frame_index[c0:c1]  # (k, clip_len)
        a, b = int(rows.min()), int(rows.max()) + 1
        frames = frames_reader.get(a, b)  # (b - a, h, w, 3)
        yield FrameRun(task.task_id, c0, frames, rows - a)
    if hasattr(source, "close"):
        source.close()
    yield VideoEnded(task.task_id)


def one_line(exc: BaseException) -> str:
    if isinstance(exc, TadInputError):
        return exc.problem
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
