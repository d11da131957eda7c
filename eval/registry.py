"""mmengine registry for metrics (child of mmengine's METRICS, scope ``tad``)."""
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import Registry

METRICS = Registry("metric", parent=MMENGINE_METRICS, scope="tad", locations=["tad.eval.metric"])
