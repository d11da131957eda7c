# STPT on THUMOS14 with imported two-stream I3D features (2048-d, 16-frame clips every
# 4 frames at 30 fps, the features ActionFormer publishes), e.g.
#   tad import-features i3d_features/ -o data/thumos14/i3d_features.h5 \
#       --fps-from data/thumos14/thumos14.json --clip-len 16 --clip-stride 4
#   tad train thumos14_stpt_i3d.py --cfg-options ann_file=data/thumos14/thumos14.json
#   tad eval thumos14_stpt_i3d.py work_dirs/thumos14_stpt_i3d/best_*.pth --out preds.json
_base_ = [
    './_base_/models/stpt.py',
    './_base_/datasets/thumos14_features.py',
    './_base_/schedules/adamw_cosine_35e.py',
    './_base_/default_runtime.py',
]

ann_file = 'data/thumos14/thumos14.json'
feature_store = 'data/thumos14/i3d_features.h5'
num_classes = 20

model = dict(in_channels=2048, num_classes=20, spatial_grid=None, max_seq_len=2304)

# I3D features come from outside tad: `tad detect` cannot extract them.
extract = None
