"""All registries of scope ``tad``. mmengine imports ``<scope>.registry`` when a config
sets ``default_scope = 'tad'``, which makes every component below reachable."""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

from tad.compat import apply_mmengine_fixes

from tad.detectors.registry import MODELS
from tad.eval.registry import METRICS
from tad.features.registry import BACKBONES

DATASETS = Registry("dataset", parent=MMENGINE_DATASETS, scope="tad", locations=["tad.datasets"])
FUNCTIONS = Registry("function", parent=MMENGINE_FUNCTIONS, scope="tad", locations=["tad.datasets"])
DATA_SAMPLERS = Registry("data sampler", parent=MMENGINE_DATA_SAMPLERS, scope="tad", locations=["tad.datasets"])
HOOKS = Registry("hook", parent=MMENGINE_HOOKS, scope="tad", locations=["tad.engine"])
# Children of the remaining Runner registries, so lookups in scope 'tad' resolve here
# (and fall through to mmengine's own entries) instead of warning once per registry.
LOOPS = Registry("loop", parent=MMENGINE_LOOPS, scope="tad", locations=["tad.engine"])
OPTIMIZERS = Registry("optimizer", parent=MMENGINE_OPTIMIZERS, scope="tad", locations=["tad.engine"])
OPTIM_WRAPPERS = Registry("optim_wrapper", parent=MMENGINE_OPTIM_WRAPPERS, scope="tad", locations=["tad.engine"])
OPTIM_WRAPPER_CONSTRUCTORS = Registry("optimizer wrapper constructor", parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope="tad", locations=["tad.engine"])
PARAM_SCHEDULERS = Registry("parameter scheduler", parent=MMENGINE_PARAM_SCHEDULERS, scope="tad",
                            locations=["tad.engine"])
LOG_PROCESSORS = Registry("log_processor", parent=MMENGINE_LOG_PROCESSORS, scope="tad", locations=["tad.engine"])
VISUALIZERS = Registry("visualizer", parent=MMENGINE_VISUALIZERS, scope="tad", locations=["tad.engine"])
VISBACKENDS = Registry("vis_backend", parent=MMENGINE_VISBACKENDS, scope="tad", locations=["tad.engine"])

__all__ = ["BACKBONES", "DATASETS", "DATA_SAMPLERS", "FUNCTIONS", "HOOKS", "LOG_PROCESSORS", "LOOPS", "METRICS",
           "MODELS", "OPTIMIZERS", "OPTIM_WRAPPERS", "OPTIM_WRAPPER_CONSTRUCTORS", "PARAM_SCHEDULERS",
           "VISBACKENDS", "VISUALIZERS"]

apply_mmengine_fixes()
