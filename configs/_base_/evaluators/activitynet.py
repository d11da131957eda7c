# ActivityNet-1.3 protocol: detection mAP at tIoU 0.5:0.05:0.95 and their average.
# The one place these thresholds are set: `tad eval`, the validation hook and
# `tad score --dataset activitynet` all read them from here.
protocol_subset = 'validation'   # the subset the protocol scores (`tad score --dataset activitynet` default split)
tiou_thresholds = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
val_evaluator = dict(type='DetectionMAP', ann_file=None, subset=None, tiou_thresholds=tiou_thresholds)
test_evaluator = dict(type='DetectionMAP', ann_file=None, subset=None, tiou_thresholds=tiou_thresholds)
