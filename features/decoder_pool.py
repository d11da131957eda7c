"""Decoder worker processes: one video each at a time, bounded queues, heartbeats.

``DecoderPool(n, timeout)`` runs ``decode_messages`` in ``n`` processes, each with its own
bounded output queue (memory stays bounded whatever the video length) and a heartbeat:
a worker that makes no progress for ``timeout`` seconds (its decoder hangs) is killed
and replaced, and ``check()`` reports its video. Blocking on a full queue is not "no
progress". ``InlineDecoder`` has the same interface and decodes in this process
(no overlap, no timeout; for debugging). Messages are ``tad.features.worker_messages``
records. Workers never import torch.
"""
from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue
import time
from typing import Iterator

from tad.features.decode_tasks import DecodeTask, decode_messages, one_line
from tad.features.worker_messages import VideoFailed, WorkerMessage

__all__ = ["DecoderPool", "InlineDecoder"]


def _die_with_parent() -> None:
    """Decoder processes must not outlive a main process killed with SIGKILL."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the ppid checks below still end the worker
        pass


class _MallocTrimmer:
    """Give freed heap memory back to the OS after each run of frames.

    The decoder's own threads allocate frame buffers from glibc per-thread arenas that
    otherwise keep growing with fragmentation, so a decoder's RSS would grow with video
    length; ``malloc_trim`` keeps it flat. A no-op where glibc is not there.
    """

    def __init__(self):
        try:
            import ctypes

            self._trim = ctypes.CDLL("libc.so.6").malloc_trim
        except Exception:
            self._trim = None

    def __call__(self) -> None:
        if self._trim is not None:
            self._trim(0)


def _worker_loop(task_q, out_q, beat) -> None:
    """Decoder process: take tasks until None; every message refreshes the heartbeat."""
    parent = os.getppid()
    _die_with_parent()
    trim = _MallocTrimmer()
    if not os.environ.get("TAD_DECODER_LOG"):
        # ffmpeg/decord print multi-line native noise for bad files; our one line per video says it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def orphaned() -> bool:
        return os.getppid() != parent

    def put(msg) -> None:
        while True:
            try:
                out_q.put(msg, timeout=0.5)
                beat.value = time.time()
                return
            except queue.Full:  # the model is the bottleneck: waiting is progress
                if orphaned():
                    os._exit(1)
                beat.value = time.time()

    while True:
        try:
            task = task_q.get(timeout=1.0)
        except queue.Empty:
            if orphaned():
                os._exit(1)
            continue
        if task is None:
            break
        beat.value = time.time()
        try:
            for msg in decode_messages(task):
                put(msg)
                del msg
                trim()
        except Exception as exc:  # one bad video: report it, take the next
            put(VideoFailed(task.task_id, one_line(exc)))
    out_q.close()
    out_q.join_thread()


class _Worker:
    def __init__(self, ctx, queue_size: int):
        self.task_q = ctx.Queue()
        self.out_q = ctx.Queue(maxsize=queue_size)
        self.beat = ctx.Value("d", time.time(), lock=False)
        self.proc = ctx.Process(target=_worker_loop, args=(self.task_q, self.out_q, self.beat), daemon=True)
        self.proc.start()
        self.task: DecodeTask | None = None
        self.dead_since: float | None = None

    def assign(self, task: DecodeTask) -> None:
        self.task = task
        self.beat.value = time.time()
        self.task_q.put(task)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        for q in (self.task_q, self.out_q):
            q.cancel_join_thread()
            q.close()


class DecoderPool:
    """Worker processes, one video each at a time; hung or dead ones are replaced."""

    def __init__(self, num_workers: int, timeout: float, queue_size: int = 3):
        methods = mp.get_all_start_methods()
        # fork: starts fast and keeps test monkeypatches; workers never touch torch.
        # TAD_DECODER_START_METHOD=forkserver|spawn gives decoders a clean interpreter instead.
        self.ctx = mp.get_context(os.environ.get("TAD_DECODER_START_METHOD", "fork") if "fork" in methods else "spawn")
        self.timeout = timeout
        self.queue_size = queue_size
        self._next = 0
        self.workers = [self._start_worker() for _ in range(num_workers)]

    def _start_worker(self) -> _Worker:
        # Freeze the parent's objects first: otherwise the child's garbage collector walks
        # (and so copies) every page of them, and its RSS creeps up to the parent's size.
        gc.collect()
        gc.freeze()
        try:
            return _Worker(self.ctx, self.queue_size)
        finally:
            gc.unfreeze()

    def idle(self) -> list[_Worker]:
        return [w for w in self.workers if w.task is None]

    def busy(self) -> bool:
        return any(w.task is not None for w in self.workers)

    def poll(self) -> list[WorkerMessage]:
        """Messages available now, round-robin over workers (at most one per worker)."""
        out = []
        n = len(self.workers)
        for i in range(n):
            w = self.workers[(self._next + i) % n]
            if w.task is None:
                continue
            try:
                out.append(w.out_q.get_nowait())
            except queue.Empty:
                pass
        self._next = (self._next + 1) % max(n, 1)
        return out

    def release(self, task_id: int) -> None:
        for w in self.workers:
            if w.task is not None and w.task.task_id == task_id:
                w.task = None

    def check(self) -> list[tuple[DecodeTask, str]]:
        """Kill and replace workers that hang or died; returns (task, reason) for their videos."""
        now, lost = time.time(), []
        for i, w in enumerate(self.workers):
            if w.task is None and w.proc.is_alive():
                continue
            reason = None
            if not w.proc.is_alive():
                # its last messages may still be in the queue: give them a moment
                w.dead_since = w.dead_since or now
                if w.task is not None and (not w.out_q.empty() and now - w.dead_since < 2.0):
                    continue
                code = w.proc.exitcode
                reason = f"decoder process died (exit code {code})" if (code or 0) >= 0 else f"decoder process killed by signal {-code}"
            elif now - w.beat.value > self.timeout:
                reason = f"decoder made no progress for {self.timeout:g} s (timed out), killed"
            if reason is None:
                continue
            if w.task is not None:
                lost.append((w.task, reason))
            w.kill()
            self.workers[i] = self._start_worker()
        return lost

    def close(self) -> None:
        for w in self.workers:
            if w.proc.is_alive() and w.task is None:
                try:
                    w.task_q.put(None)
                except Exception:
                    pass
        deadline = time.time() + 5
        for w in self.workers:
            w.proc.join(timeout=max(0.0, deadline - time.time()))
            w.kill()


class InlineDecoder:
    """``workers=0``: decode in this process, one video at a time (no timeout)."""

    def __init__(self):
        self.messages: Iterator[WorkerMessage] | None = None
        self.task: DecodeTask | None = None
        self.workers = [self]

    def idle(self) -> list:
        return [self] if self.task is None else []

    def assign(self, task: DecodeTask) -> None:
        self.task, self.messages = task, decode_messages(task)

    def busy(self) -> bool:
        return self.task is not None

    def poll(self) -> list[WorkerMessage]:
        if self.task is None:
            return []
        try:
            return [next(self.messages)]
        except StopIteration:
            return []
        except Exception as exc:
            return [VideoFailed(self.task.task_id, one_line(exc))]

    def release(self, task_id: int) -> None:
        self.task, self.messages = None, None

    def check(self) -> list:
        return []

    def close(self) -> None:
        pass
