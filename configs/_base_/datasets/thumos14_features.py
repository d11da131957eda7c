# THUMOS14 on cached features: train on the validation subset, test on the test subset.
#
# The top-level keys below are copied by tad.engine.runner.load_config into every
# dataset/evaluator entry that leaves them as None, so overriding one top-level key
# moves everything:  tad train CONFIG --cfg-options ann_file=A.json feature_store=F.h5
# Relative paths are relative to the directory you run `tad` from.
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

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='tad_collate'),
    dataset=dict(type='THUMOSFeatureDataset', ann_file=None, feature_store=None, subset=None,
                 max_seq_len=None, training=True, trunc_thresh=0.5, crop_ratio=[0.9, 1.0]),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='tad_collate'),
    dataset=dict(type='THUMOSFeatureDataset', ann_file=None, feature_store=None, subset=None,
                 training=False),
)
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='tad_collate'),
    dataset=dict(type='THUMOSFeatureDataset', ann_file=None, feature_store=None, subset=None,
                 training=False),
)
val_evaluator = dict(type='DetectionMAP', ann_file=None, subset=None,
                     tiou_thresholds=[0.3, 0.4, 0.5, 0.6, 0.7])
test_evaluator = dict(type='DetectionMAP', ann_file=None, subset=None,
                      tiou_thresholds=[0.3, 0.4, 0.5, 0.6, 0.7])
