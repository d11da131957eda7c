# THUMOS14 with TAda2D-R50 features made by tad itself:
#   tad extract videos/ -o data/thumos14/tada2d_features.h5 --backbone tada2d_r50 \
#       --checkpoint tada2d_r50_8x8.pyth --fps 30
# `extract` records how the features were made, so `tad detect` can repeat it on new videos.
_base_ = ['./base.py']

feature_store = 'data/thumos14/tada2d_features.h5'

# ExtractOptions fields (None = the backbone's default)
extract = dict(backbone='tada2d_r50', backbone_kwargs=dict(preset='8x8'), clip_len=None,
               frame_interval=None, clip_stride=None, fps=30, short_side=None, crop=None,
               spatial_grid=None)
