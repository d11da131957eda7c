# Multi-THUMOS (multi-label) protocol: detection mAP at tIoU 0.1:0.1:0.9 and their average.
# The one place these thresholds are set: `tad eval`, the validation hook and
# `tad score --dataset multithumos` all read them from here.
protocol_subset = 'test'   # the subset the protocol scores (`tad score --dataset multithumos` default split)
tiou_thresholds = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
val_evaluator = dict(type='DetectionMAP', ann_file=None, subset=None, tiou_thresholds=tiou_thresholds)
test_evaluator = dict(type='DetectionMAP', ann_file=None, subset=None, tiou_thresholds=tiou_thresholds)
