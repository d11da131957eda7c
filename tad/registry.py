"""All registries of scope ``tad``. mmengine imports ``<scope>.registry`` when a config
sets ``default_scope = 'tad'``, which makes every component below reachable."""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import Registry

from tad.compat import apply_mmengine_fixes

from tad.detectors.registry import MODELS
from tad.eval.registry import METRICS
from tad.features.registry import BACKBONES

DATASETS = Registry("dataset", parent=MMENGINE_DATASETS, scope="tad", locations=["tad.datasets"])
FUNCTIONS = Registry("function", parent=MMENGINE_FUNCTIONS, scope="tad", locations=["tad.datasets"])
DATA_SAMPLERS = Registry("data sampler", parent=MMENGINE_DATA_SAMPLERS, scope="tad", locations=["tad.datasets"])
HOOKS = Registry("hook", parent=MMENGINE_HOOKS, scope="tad", locations=["tad.engine"])

__all__ = ["BACKBONES", "DATASETS", "DATA_SAMPLERS", "FUNCTIONS", "HOOKS", "METRICS", "MODELS"]

apply_mmengine_fixes()
