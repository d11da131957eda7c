"""Glue around mmengine's Runner: building it from a config, hooks, launch helpers."""
from tad.engine import lean_checkpoints  # noqa: F401  (registers LeanCheckpointHook)
from tad.engine import ema_selection  # noqa: F401  (registers EMASelectionHook)
