"""Batching clips across videos: runs of frames in, batches of up to ``batch_size`` clips out.

Runs (``FrameRun`` records) are queued as they come; ``take()`` gathers clips from the
oldest runs (a run's clips may span several batches; one batch may hold clips of
several videos), only ever of one frame shape per batch. Memory: the pending runs.
"""
from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["ClipBatcher"]


class ClipBatcher:
    """Pending runs of frames; hands out batches of up to ``batch_size`` clips of one frame shape."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.items: deque = deque()  # [task_id, first_clip, frames, rows, taken]
        self.count = 0

    def add(self, task_id: int, first_clip: int, frames: np.ndarray, rows: np.ndarray) -> None:
        self.items.append([task_id, first_clip, frames, rows, 0])
        self.count += len(rows)

    def drop(self, task_id: int) -> None:
        kept = deque(item for item in self.items if item[0] != task_id)
        self.count = sum(len(item[3]) - item[4] for item in kept)
        self.items = kept

    def ready(self) -> bool:
        return self.count >= self.batch_size

    def take(self):
        """(clips uint8 (B, T, h, w, 3) numpy, [(task_id, clip_index), ...]) or None."""
        import torch

        parts, owners, need, shape = [], [], self.batch_size, None
        while self.items and need > 0:
            task_id, first, frames, rows, taken = self.items[0]
            if shape is None:
                shape = frames.shape[1:]
            elif frames.shape[1:] != shape:
                break  # other frame size: next batch
            k = min(need, len(rows) - taken)
            sel = rows[taken : taken + k]  # (k, clip_len)
            parts.append(torch.from_numpy(frames)[torch.from_numpy(sel)])  # (k, clip_len, h, w, 3)
            owners.extend((task_id, first + taken + j) for j in range(k))
            need -= k
            self.count -= k
            if taken + k == len(rows):
                self.items.popleft()
            else:
                self.items[0][4] = taken + k
        if not parts:
            return None
        return (parts[0] if len(parts) == 1 else torch.cat(parts)), owners
