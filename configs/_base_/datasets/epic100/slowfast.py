# EPIC-Kitchens-100 with the SlowFast features ActionFormer publishes (2304-d, one 32-frame
# clip every 16 frames at 30 fps: ~1.9 features per second), one .npz per video:
#   tad import-features epic_slowfast/ --ext npz -o data/epic100/slowfast_features.h5 \
#       --fps-from data/epic100/epic100_verb.json --clip-len 32 --clip-stride 16
_base_ = ['./base.py']

feature_store = 'data/epic100/slowfast_features.h5'

# the features come from outside tad: `tad detect` cannot extract them.
extract = None
