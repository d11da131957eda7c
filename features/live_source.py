"""Frames from one live source, in order, as they arrive: file, growing file, URL or device.

``LiveFrameSource(source, geometry, ...)`` opens ``source`` with PyAV (a file, an
``rtsp://`` / ``http(s)://`` URL, a device such as ``/dev/video0``) and decodes it in a
reader thread into a bounded queue; iterating yields ``LiveFrame`` records (presentation
time in seconds, uint8 (h, w, 3) RGB resized and cropped as the backbone wants).

* ``realtime=True``: a file is served at its own frame rate (simulates a camera).
* ``follow=True``: the file is still being written (e.g. a recorder's ``.ts``/``.mkv``):
  at its end the reader waits for more bytes instead of stopping; once it has not grown for
  ``stall_timeout`` seconds the stream ends (``end_reason`` says so).
* The stream ends with ``end_reason``: ``None`` (clean end of stream), or one line for a
  dropped stream / corrupt data; a source that delivers nothing for ``stall_timeout``
  seconds raises ``TadInputError(source, "no frame for N s (stalled); ...")``.
* ``close()`` stops the reader (Ctrl-C in the consumer); frames already yielded stay valid.

Frame times are PyAV's (``frame.time``); with native fps they are the times the
offline extractor reads from the same file. This module imports no torch.
"""
from __future__ import annotations

import io
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from tad.errors import TadInputError
from tad.features.frame_transforms import FrameGeometry

__all__ = ["LiveFrame", "LiveFrameSource", "GrowingFile", "is_url_or_device"]


@dataclass
class LiveFrame:
    index: int  # decoded frame number
    time: float  # presentation time, seconds
    rgb: np.ndarray  # (h, w, 3) uint8


def is_url_or_device(source: str) -> bool:
    return "://" in source or source.startswith("/dev/")


class GrowingFile(io.RawIOBase):
    """A file that is still being written: reads at its end wait (poll) for more bytes.

    After ``idle_timeout`` seconds without growth a read returns end-of-file and ``stalled``
    is set, so a recorder that stopped ends the stream.
    """

    def __init__(self, path: str, idle_timeout: float, poll: float = 0.05):
        super().__init__()
        self._f = open(path, "rb")
        self.idle_timeout = idle_timeout
        self.poll = poll
        self.stalled = False
        self.closing = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, buffer) -> int:
        waited = 0.0
        while True:
            n = self._f.readinto(buffer)
            if n:
                return n
            if self.closing or self.stalled or waited >= self.idle_timeout:
                self.stalled = self.stalled or not self.closing  # once stalled, the file is finished
                return 0
            time.sleep(self.poll)
            waited += self.poll

    def close(self) -> None:
        self._f.close()
        super().close()


class LiveFrameSource:
    """See the module docstring.

    Args:
        source: file path, URL or device.
        geometry: resize/crop of the backbone (``FrameGeometry``).
        realtime: pace a file at its own frame rate.
        follow: the file is growing; wait at its end.
        stall_timeout: seconds without a frame before the source counts as stalled.
        queue_frames: decoded frames buffered ahead of the consumer.
    """

    def __init__(self, source: str, geometry: FrameGeometry, realtime: bool = False, follow: bool = False,
                 stall_timeout: float = 10.0, queue_frames: int = 64):
        if not stall_timeout > 0:
            raise TadInputError("--stall-timeout", f"must be > 0, got {stall_timeout}")
        self.source = str(source)
        if not is_url_or_device(self.source):
            if not os.path.exists(self.source):
                raise TadInputError(self.source, "no such file")
            if not follow and os.path.getsize(self.source) == 0:
                raise TadInputError(self.source, "empty file (0 bytes)")
        self.geometry = geometry
        self.realtime = realtime
        self.follow = follow
        self.stall_timeout = float(stall_timeout)
        self.end_reason: str | None = None
        self.native_fps: float | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_frames)
        self._stop = threading.Event()
        self._file: GrowingFile | None = None
        self._container = self._open()
        self._thread = threading.Thread(target=self._read, name="tad-stream-reader", daemon=True)
        self._thread.start()

    def _open(self):
        import av

        try:
            if self.follow:
                self._file = GrowingFile(self.source, self.stall_timeout)
                container = av.open(self._file, mode="r")
            else:
                container = av.open(self.source, timeout=(self.stall_timeout, self.stall_timeout))
        except Exception as exc:
            raise TadInputError(self.source, f"cannot open as video ({_one_line(exc)})") from None
        if not container.streams.video:
            container.close()
            raise TadInputError(self.source, "has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.native_fps = float(rate) if rate else None
        return container

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        size = None
        wall0 = time0 = None
        index = 0
        try:
            for frame in self._container.decode(stream):
                if self._stop.is_set():
                    break
                t = frame.time if frame.time is not None else index / (self.native_fps or 30.0)
                if size is None:
                    size = self.geometry.decode_size(frame.width, frame.height)
                if self.realtime:
                    if wall0 is None:
                        wall0, time0 = time.monotonic(), t
                    delay = wall0 + (t - time0) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                rgb = frame.to_ndarray(width=size[0], height=size[1], format="rgb24")  # (h, w, 3)
                rgb = np.ascontiguousarray(self.geometry.crop_frames(rgb[None])[0])
                if not self._put(LiveFrame(index, float(t), rgb)):
                    break
                index += 1
            if self._file is not None and self._file.stalled:
                self.end_reason = (f"the file stopped growing (no new data for {self.stall_timeout:g} s)" if index
                                   else f"no video data for {self.stall_timeout:g} s")
        except Exception as exc:  # dropped connection, corrupt data: end here, keep what we have
            self.end_reason = f"stream ended at frame {index}: {_one_line(exc)}"
        finally:
            self._put(None)

    def __iter__(self) -> Iterator[LiveFrame]:
        while True:
            try:
                # a followed file reports its own end (no growth for stall_timeout): wait a little longer
                item = self._queue.get(timeout=self.stall_timeout * (3 if self.follow else 1) + (2.0 if self.follow else 0))
            except queue.Empty:
                self.close()
                raise TadInputError(self.source, f"no frame for {self.stall_timeout:g} s (stalled); "
                                    "the segments found so far are written") from None
            if item is None:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._file is not None:
            self._file.closing = True
        self._thread.join(timeout=2.0)
        try:
            self._container.close()
        except Exception:
            pass


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
