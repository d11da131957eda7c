# STPT on THUMOS14 with imported two-stream I3D features (see _base_/datasets/thumos14/i3d.py):
#   tad import-features i3d_features/ -o data/thumos14/i3d_features.h5 \
#       --fps-from data/thumos14/thumos14.json --clip-len 16 --clip-stride 4
#   tad train thumos14_i3d.py --cfg-options ann_file=data/thumos14/thumos14.json
#   tad eval thumos14_i3d.py work_dirs/thumos14_i3d/best_*.pth --out preds.json
# (old name: thumos14_stpt_i3d.py)
_base_ = [
    '../_base_/models/stpt.py',
    '../_base_/datasets/thumos14/i3d.py',
    '../_base_/schedules/adamw_cosine_35e.py',
    '../_base_/default_runtime.py',
]

model = dict(in_channels=2048, num_classes=20, spatial_grid=None, max_seq_len=2304)
