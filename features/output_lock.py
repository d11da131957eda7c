"""One writer per output: an exclusive ``fcntl`` lock beside the output file.

Contract: ``OutputLock(out_path, rank)`` takes an exclusive, non-blocking POSIX lock on
``<out>.lock`` (rank 0) or ``<out>.rank<r>.lock`` (other ranks of a distributed run)
and writes its pid there. A second process asking for the same lock gets
``TadInputError(out, "is being written by another process (pid N)")`` at once. The
kernel drops the lock when the holding process dies (``kill -9`` included), so a
stale lock file never blocks a resume. ``release()`` unlinks the file and drops the
lock; a process that opened the file just before it was unlinked notices that its
file is no longer the one at the path and tries again.

POSIX record locks belong to a process, so two writers inside one process do not
exclude each other (tests that simulate a crash by abandoning a writer still work).
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tad.errors import TadInputError

__all__ = ["OutputLock", "lock_path_for"]


def lock_path_for(out_path: str | os.PathLike, rank: int = 0) -> Path:
    """The lock file of ``out_path`` for ``rank``."""
    return Path(f"{out_path}.lock" if rank == 0 else f"{out_path}.rank{rank}.lock")


class OutputLock:
    """Exclusive lock on an output path, held until ``release()`` or process exit.

    Args:
        out_path: the output file the lock protects (named in the error).
        rank: distributed rank; each rank has its own lock file.
    """

    def __init__(self, out_path: str | os.PathLike, rank: int = 0):
        self.out_path = Path(out_path)
        self.path = lock_path_for(out_path, rank)
        self._fd: int | None = None
        for _ in range(20):  # retried only when a releasing holder unlinked the file under us
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = self._read_pid(fd)
                os.close(fd)
                who = f" (pid {holder})" if holder else ""
                raise TadInputError(self.out_path, f"is being written by another process{who}; wait for it to "
                                                   f"finish, or stop it and re-run to resume") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._fd = fd
                return
            os.close(fd)
        raise TadInputError(self.out_path, "could not lock the output (its lock file keeps changing)")

    @staticmethod
    def _read_pid(fd: int) -> int | None:
        try:
            text = os.pread(fd, 32, 0).decode().strip()
            return int(text) if text else None
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlink the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:  # not released: drop the lock, leave the file (harmless)
            try:
                os.close(fd)
            except OSError:
                pass
