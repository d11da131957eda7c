# STPT on THUMOS14 with SlowFast-R50 8x8 features made by tad (see _base_/datasets/thumos14/slowfast.py):
#   tad extract videos/ -o data/thumos14/slowfast_features.h5 --backbone slowfast_r50_8x8 \
#       --checkpoint SLOWFAST_8x8_R50.pkl --fps 30
#   tad train thumos14_slowfast.py
# (old name: thumos14_stpt_slowfast.py)
_base_ = [
    '../_base_/models/stpt.py',
    '../_base_/datasets/thumos14/slowfast.py',
    '../_base_/schedules/adamw_cosine_35e.py',
    '../_base_/default_runtime.py',
]

model = dict(in_channels=2304, num_classes=20, spatial_grid=None, max_seq_len=2304)
