# ActivityNet-1.3 on TSP features (R(2+1)D-34 fine-tuned by TSP, 512-d, one 16-frame clip every
# 16 frames at 15 fps: about one feature per 1.07 s), imported from TSP's single .h5 file:
#   tad import-features tsp_features.h5 --format tsp_h5 -o data/activitynet/tsp_features.h5 \
#       --fps-from data/activitynet/activitynet13.json --fps 15 --clip-len 16 --clip-stride 16
# Videos are minutes long with one or two long actions: every video is resized to 192 steps
# (strategy 'resize'); segments come back to seconds through the resized timestamps.
#
# The field's recipe is a class-agnostic detector (class_agnostic=True: every action is class
# 'action') whose segments are paired with an external video-level classifier's top-k classes,
# scored segment x class (classifier_scores: CUHK's cuhk_val_simp_share.json format,
# {"results": {video_id: [200 scores]}, "class": [200 names]}; or --classifier-scores FILE on
# `tad eval` / `tad detect`). Without classifier scores, a class-agnostic model is scored
# class-agnostically (every GT one class). Plain multi-class training:
# configs/stpt/activitynet13_tsp_multiclass.py.
_base_ = ['../feature_loaders.py', '../../evaluators/activitynet.py']

ann_file = 'data/activitynet/activitynet13.json'       # official ActivityNet format (ids without v_)
feature_store = 'data/activitynet/tsp_features.h5'
train_subset = 'training'
val_subset = 'validation'
test_subset = 'validation'   # the protocol scores the 4,728 validation videos (testing has no labels)
max_seq_len = 192            # every video resized to 192 steps
class_agnostic = True
num_classes = 1
classifier_scores = None     # e.g. 'data/activitynet/cuhk_val_simp_share.json'
classifier_top_k = 2         # classes per segment in the fusion

train_dataloader = dict(batch_size=16, dataset=dict(strategy='resize', crop_ratio=None))
val_dataloader = dict(dataset=dict(strategy='resize'))
test_dataloader = dict(dataset=dict(strategy='resize'))

# TSP features come from outside tad: `tad detect` cannot extract them.
extract = None
