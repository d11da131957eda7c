# STPT on Multi-THUMOS (multi-label, 65 classes) with I3D features (see _base_/datasets/multithumos/):
#   tad train multithumos_i3d.py
#   tad eval multithumos_i3d.py work_dirs/multithumos_i3d/best_*.pth --out preds.json
# THUMOS14's model and schedule, with multi-label targets: a point inside several segments of
# different classes is a positive for each of them (not only the shortest one's class). On CPU-sized
# synthetic sets this did not raise mAP (bench/multilabel_targets.py: nested instances 83.58 vs
# 83.58, similar-length overlapping pairs 76.27 vs 79.06, one seed); re-measure on real features.
_base_ = [
    '../_base_/models/stpt.py',
    '../_base_/datasets/multithumos/i3d.py',
    '../_base_/schedules/adamw_cosine_35e.py',
    '../_base_/default_runtime.py',
]

num_classes = 65

model = dict(
    in_channels=2048, num_classes=65, max_seq_len=2304, spatial_grid=None,
    assigner=dict(multi_label=True),
    test_cfg=dict(max_seg_num=500),   # ~3x THUMOS's instances per video
)
