# THUMOS14 with SlowFast-R50 8x8 features made by tad (2304-d = 2048 slow + 256 fast):
#   tad extract videos/ -o data/thumos14/slowfast_features.h5 --backbone slowfast_r50_8x8 \
#       --checkpoint SLOWFAST_8x8_R50.pkl --fps 30
_base_ = ['./base.py']

feature_store = 'data/thumos14/slowfast_features.h5'

# ExtractOptions fields (None = the backbone's default)
extract = dict(backbone='slowfast_r50_8x8', clip_len=None, frame_interval=None,
               clip_stride=None, fps=30, short_side=None, crop=None, spatial_grid=None)
