# Multi-THUMOS with the THUMOS14 two-stream I3D features ActionFormer publishes (2048-d, 16-frame
# clips every 4 frames at 30 fps; the video ids are THUMOS14's):
#   tad import-features i3d_features/ -o data/multithumos/i3d_features.h5 \
#       --fps-from data/thumos14/thumos14.json --clip-len 16 --clip-stride 4
_base_ = ['./base.py']

feature_store = 'data/multithumos/i3d_features.h5'

# the features come from outside tad: `tad detect` cannot extract them.
extract = None
