# STPT on ActivityNet-1.3 with TSP features, plain multi-class training: the detector scores
# all 200 classes itself (no external classifier). Same data, sizes and schedule as
# activitynet13_tsp.py:
#   tad train activitynet13_tsp_multiclass.py
#   tad eval activitynet13_tsp_multiclass.py work_dirs/activitynet13_tsp_multiclass/best_*.pth
_base_ = ['./activitynet13_tsp.py']

class_agnostic = False
num_classes = 200
model = dict(num_classes=200, test_cfg=dict(class_agnostic_nms=False))
