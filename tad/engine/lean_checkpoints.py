"""LeanCheckpointHook: optimizer state only in the checkpoint ``--resume`` needs.

mmengine's ``CheckpointHook`` writes every ``epoch_N.pth`` / ``iter_N.pth`` with the model
weights, the EMA copy (``ema_state_dict``), the optimizer state (two tensors per weight for
AdamW) and the scheduler state. Only the newest one is ever resumed from
(``tad.engine.runner.find_resume_checkpoint``), so after each save this hook rewrites the
older step checkpoints of the work dir without ``optimizer`` and ``param_schedulers``: they
keep what ``tad eval``/``tad detect`` load (weights, EMA, meta) at about half the size
for AdamW. ``best_*.pth`` are already written without optimizer state by mmengine.

Crash safety: the newest checkpoint is never touched, and an older one is rewritten to a
temporary file that then replaces it (``os.replace``), so a kill at any moment leaves every
file whole and the newest complete checkpoint still resumable.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from tad.registry import HOOKS

#: checkpoint keys only resuming needs
RESUME_ONLY_KEYS = ("optimizer", "param_schedulers")


def _step(path: Path) -> int:
    try:
        return int(path.stem.split("_")[-1])
    except ValueError:
        return -1


def strip_resume_state(path: str | os.PathLike) -> bool:
    """Rewrite the checkpoint at ``path`` without optimizer/scheduler state; True if it had any.

    Only for checkpoints this run wrote itself (read with ``weights_only=False``: mmengine's
    ``meta`` holds plain Python objects).
    """
    path = Path(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if not any(key in checkpoint for key in RESUME_ONLY_KEYS):
        return False
    for key in RESUME_ONLY_KEYS:
        checkpoint.pop(key, None)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)
    return True


@HOOKS.register_module()
class LeanCheckpointHook(Hook):
    """After every checkpoint save, drop resume-only state from all but the newest step checkpoint.

    Runs after ``CheckpointHook`` (priority LOWEST vs its VERY_LOW) in the same
    ``after_train_epoch`` call (tad trains by epoch).

    Args:
        out_dir: the checkpoint directory (None: the runner's work dir, CheckpointHook's default).
    """

    priority = "LOWEST"

    def __init__(self, out_dir: str | None = None):
        self.out_dir = out_dir
        self._lean: set[str] = set()  # files known to hold no resume state

    def _checkpoints(self, runner) -> list[Path]:
        folder = Path(self.out_dir or runner.work_dir)
        found = [Path(p) for p in glob.glob(str(folder / "epoch_*.pth")) + glob.glob(str(folder / "iter_*.pth"))]
        return sorted(found, key=_step)

    def _strip_older(self, runner) -> None:
        if not is_main_process():
            return
        found = self._checkpoints(runner)
        for path in found[:-1]:  # never the newest
            if str(path) in self._lean:
                continue
            try:
                strip_resume_state(path)
            except Exception as exc:  # a foreign or damaged file: leave it as it is
                runner.logger.warning(f"{path}: not made lean ({type(exc).__name__}: {exc})")
            self._lean.add(str(path))

    def after_train_epoch(self, runner) -> None:
        self._strip_older(runner)
