# EPIC-Kitchens-100 on cached features: train on 'training', score 'validation' (the test
# set's labels are not public). Long egocentric videos (up to ~1.5 h) packed with short,
# dense actions; verb (97 classes) and noun (300 classes) are detected by two separate
# detectors, one annotation file per task, as the field trains them:
#   tad convert-annotations EPIC_100_train.csv EPIC_100_validation.csv --task verb -o data/epic100/epic100_verb.json
#   tad convert-annotations EPIC_100_train.csv EPIC_100_validation.csv --task noun -o data/epic100/epic100_noun.json
# (class names and durations come from EPIC_100_{verb,noun}_classes.csv and
# EPIC_100_video_info.csv beside the CSVs, as in the official repository.)
# Scored at tIoU 0.1:0.1:0.5 (_base_/evaluators/epic.py).
_base_ = ['../feature_loaders.py', '../../evaluators/epic.py']

ann_file = 'data/epic100/epic100_verb.json'
feature_store = 'data/epic100/features.h5'
train_subset = 'training'
val_subset = 'validation'
test_subset = 'validation'
num_classes = 97
max_seq_len = 2304   # random training windows (ActionFormer's EPIC setting); whole videos at test

# ActionFormer's EPIC setting: an action is kept in a training window when >= 30 % of it is inside
train_dataloader = dict(dataset=dict(strategy='window', trunc_thresh=0.3, crop_ratio=[0.9, 1.0]))
