"""mmengine registry for detector components (children of mmengine's MODELS, scope ``tad``)."""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry("model", parent=MMENGINE_MODELS, scope="tad", locations=["tad.detectors"])
