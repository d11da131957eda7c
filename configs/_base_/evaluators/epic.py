# EPIC-Kitchens-100 protocol: detection mAP at tIoU 0.1:0.1:0.5 and their average.
# The one place these thresholds are set: `tad eval`, the validation hook and
# `tad score --dataset epic` all read them from here.
protocol_subset = 'validation'   # the subset the protocol scores (`tad score --dataset epic` default split)
tiou_thresholds = [0.1, 0.2, 0.3, 0.4, 0.5]
val_evaluator = dict(type='DetectionMAP', ann_file=None, subset=None, tiou_thresholds=tiou_thresholds)
test_evaluator = dict(type='DetectionMAP', ann_file=None, subset=None, tiou_thresholds=tiou_thresholds)
