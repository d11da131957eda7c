# THUMOS14 with imported two-stream I3D features (2048-d, 16-frame clips every 4 frames at
# 30 fps, the features ActionFormer publishes), e.g.
#   tad import-features i3d_features/ -o data/thumos14/i3d_features.h5 \
#       --fps-from data/thumos14/thumos14.json --clip-len 16 --clip-stride 4
_base_ = ['./base.py']

feature_store = 'data/thumos14/i3d_features.h5'

# I3D features come from outside tad: `tad detect` cannot extract them.
extract = None
