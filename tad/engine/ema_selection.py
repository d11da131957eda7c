"""EMASelectionHook: the exported checkpoint holds whichever of its EMA and raw weights validates better.

mmengine's ``EMAHook`` writes every checkpoint with the EMA weights in ``state_dict`` (what
``tad eval`` / ``tad detect`` load) and the raw weights in ``ema_state_dict['module.<name>']``.
On a small dataset the EMA can still lag (ActionFormer's 0.999 without warm-up held 35 % of
the random initial weights after a 1,050-step run), so the exported weights could score far
below the raw ones.

At the end of training this hook takes the checkpoint ``tad train`` exports
(``tad.engine.runner.find_best_checkpoint``: the newest ``best_*average_mAP*.pth``, else the
last step checkpoint), scores both of its weight sets on the validation set (the config's
``val_dataloader`` / ``val_evaluator``, on the metric ``save_best`` names, default
``average_mAP``) and rewrites the file so that ``state_dict`` holds the higher-scoring set
(ties keep the EMA). The other set stays in ``ema_state_dict['module.<name>']``, so the
file still holds both. ``meta['exported_weights']`` is ``'ema'`` or ``'raw'`` and
``meta['weight_selection']`` records the metric and both scores; the same dict is put in
the runner's message hub (``weight_selection``) for ``tad train`` to print.

A rewritten step checkpoint still resumes correctly: before ``EMAHook`` reads a checkpoint
whose ``meta['exported_weights']`` is ``'raw'``, this hook swaps the two sets back (it runs
at a higher priority than ``EMAHook``). Nothing happens without an ``EMAHook``, without a
validation loop, or when the checkpoint has no ``ema_state_dict``. The file is rewritten
atomically (temporary file + ``os.replace``), so a kill leaves it whole.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper

from tad.registry import HOOKS

DEFAULT_METRIC = "average_mAP"


def split_weights(checkpoint: dict) -> tuple[dict, dict]:
    """(EMA weights, raw weights) of a checkpoint written by mmengine's EMAHook (any selection)."""
    exported = checkpoint["state_dict"]
    other = {key[7:]: value for key, value in checkpoint["ema_state_dict"].items()
             if key.startswith("module.") and key[7:] in exported}
    other = {**exported, **other}  # keys the EMA does not track are shared
    if (checkpoint.get("meta") or {}).get("exported_weights") == "raw":
        return other, dict(exported)
    return dict(exported), other


def swap_weight_sets(checkpoint: dict) -> None:
    """Exchange ``state_dict[name]`` and ``ema_state_dict['module.' + name]`` in place."""
    state, ema = checkpoint["state_dict"], checkpoint["ema_state_dict"]
    for key in list(ema):
        if key.startswith("module.") and key[7:] in state:
            state[key[7:]], ema[key] = ema[key], state[key[7:]]


@HOOKS.register_module()
class EMASelectionHook(Hook):
    """After training, export the better of the EMA and raw weights by validation (module docstring).

    Args:
        metric: validation metric to compare (None: the checkpoint hook's ``save_best`` when it names
            one metric, else ``average_mAP``); higher is better.
    """

    priority = "HIGH"  # before EMAHook (ABOVE_NORMAL) in after_load_checkpoint

    def __init__(self, metric: str | None = None):
        self.metric = metric

    # ------------------------------------------------------------------ resume
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get("meta") or {}
        if meta.get("exported_weights") == "raw" and "ema_state_dict" in checkpoint:
            swap_weight_sets(checkpoint)  # back to EMAHook's layout: state_dict = EMA
            meta["exported_weights"] = "ema"

    # ------------------------------------------------------------------ selection
    def _metric_name(self, runner) -> str:
        if self.metric:
            return self.metric
        for hook in runner.hooks:
            save_best = getattr(hook, "save_best", None)
            if isinstance(save_best, str) and save_best != "auto":
                return save_best
            if isinstance(save_best, (list, tuple)) and len(save_best) == 1:
                return save_best[0]
        return DEFAULT_METRIC

    @torch.no_grad()
    def _score(self, runner, loop, module: torch.nn.Module, weights: dict, name: str) -> float | None:
        module.load_state_dict(weights, strict=True)
        runner.model.eval()
        for batch in loop.dataloader:
            outputs = runner.model.val_step(batch)
            loop.evaluator.process(data_samples=outputs, data_batch=batch)
        metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        return None if metrics.get(name) is None else float(metrics[name])

    def after_train(self, runner) -> None:
        from tad.engine.runner import find_best_checkpoint

        if not any(isinstance(hook, EMAHook) for hook in runner.hooks):
            return
        loop = getattr(runner, "val_loop", None)
        if loop is None or not hasattr(loop, "evaluator") or not hasattr(loop, "dataloader"):
            runner.logger.info("EMA/raw weight selection skipped: no validation loop")
            return
        try:
            path = Path(find_best_checkpoint(runner.work_dir))
        except Exception:
            return
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # this run's own file
        if "ema_state_dict" not in checkpoint:
            return
        ema_weights, raw_weights = split_weights(checkpoint)
        module = runner.model.module if is_model_wrapper(runner.model) else runner.model
        current = copy.deepcopy(module.state_dict())
        name = self._metric_name(runner)
        try:
            ema_score = self._score(runner, loop, module, ema_weights, name)
            raw_score = self._score(runner, loop, module, raw_weights, name)
        finally:
            module.load_state_dict(current, strict=True)
        if ema_score is None or raw_score is None:
            runner.logger.warning(f"EMA/raw weight selection skipped: validation gave no {name!r}")
            return
        chosen = "raw" if raw_score > ema_score else "ema"
        selection = dict(metric=name, ema=ema_score, raw=raw_score, exported=chosen, checkpoint=str(path))
        if is_main_process():
            meta = checkpoint.setdefault("meta", {})
            if meta.get("exported_weights", "ema") != chosen:
                swap_weight_sets(checkpoint)
            meta["exported_weights"] = chosen
            meta["weight_selection"] = {k: v for k, v in selection.items() if k != "checkpoint"}
            tmp = path.with_name(path.name + ".tmp")
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        barrier()
        runner.message_hub.update_info("weight_selection", selection)
        runner.logger.info(f"exported weights: {chosen} (validation {name}: EMA {100 * ema_score:.2f}, "
                           f"raw {100 * raw_score:.2f}) in {path}")
