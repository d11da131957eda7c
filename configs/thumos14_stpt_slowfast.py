# STPT on THUMOS14 with SlowFast-R50 8x8 features made by tad (2304-d = 2048 slow + 256 fast):
#   tad extract videos/ -o data/thumos14/slowfast_features.h5 --backbone slowfast_r50_8x8 \
#       --checkpoint SLOWFAST_8x8_R50.pkl --fps 30
#   tad train thumos14_stpt_slowfast.py
_base_ = [
    './_base_/models/stpt.py',
    './_base_/datasets/thumos14_features.py',
    './_base_/schedules/adamw_cosine_35e.py',
    './_base_/default_runtime.py',
]

ann_file = 'data/thumos14/thumos14.json'
feature_store = 'data/thumos14/slowfast_features.h5'
num_classes = 20

model = dict(in_channels=2304, num_classes=20, spatial_grid=None, max_seq_len=2304)

# ExtractOptions fields (None = the backbone's default)
extract = dict(backbone='slowfast_r50_8x8', clip_len=None, frame_interval=None,
               clip_stride=None, fps=30, short_side=None, crop=None, spatial_grid=None)
