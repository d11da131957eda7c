# THUMOS14 on cached features: train on the validation subset, test on the test subset.
# Long videos (up to ~27k steps): random training windows, whole videos at test.
# The feature files (<features>.py beside this one) set feature_store and how the features
# were made; the model's in_channels is set by the top-level config.
_base_ = ['../feature_loaders.py', '../../evaluators/thumos14.py']

ann_file = 'data/thumos14/thumos14.json'      # ActionFormer or ActivityNet JSON
feature_store = 'data/thumos14/features.h5'   # from `tad extract` / `tad import-features`
train_subset = 'validation'
# THUMOS14 has no separate validation split: like ActionFormer/OpenTAD, the mAP used to
# keep the best checkpoint is measured on the test subset. Set val_subset to a held-out
# subset of your own annotations to avoid selecting on test.
val_subset = 'test'
test_subset = 'test'
num_classes = 20
max_seq_len = 2304   # training window, feature steps (random crops keep actions >= 50% inside)
