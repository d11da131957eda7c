# STPT on THUMOS14 with TAda2D-R50 features made by tad itself (see _base_/datasets/thumos14/tada2d.py):
#   tad extract videos/ -o data/thumos14/tada2d_features.h5 --backbone tada2d_r50 \
#       --checkpoint tada2d_r50_8x8.pyth --fps 30
#   tad train thumos14_tada2d.py
# (old name: thumos14_stpt_tada2d.py)
_base_ = [
    '../_base_/models/stpt.py',
    '../_base_/datasets/thumos14/tada2d.py',
    '../_base_/schedules/adamw_cosine_35e.py',
    '../_base_/default_runtime.py',
]

model = dict(in_channels=2048, num_classes=20, spatial_grid=None, max_seq_len=2304)
