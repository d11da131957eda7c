# Dataloaders shared by every dataset of cached clip features (tad.datasets.FeatureDataset).
#
# Dataset bases (configs/_base_/datasets/<dataset>/<features>.py) inherit this and set the
# top-level data keys, which each dataset/evaluator entry below takes where it leaves them
# None (FeatureDataset.fill_config / DetectionMAP.fill_config, called by load_config):
#   ann_file, feature_store, max_seq_len, train_subset / val_subset / test_subset
# so overriding one top-level key moves everything:
#   tad train CONFIG --cfg-options ann_file=A.json feature_store=F.h5
# Relative paths are relative to the directory you run `tad` from.
#
# How a video becomes model input is the dataset's `strategy`:
#   'window'  random training windows of max_seq_len steps, whole videos at test (long videos)
#   'resize'  every video interpolated to resize_length (default max_seq_len) steps (short videos)
#   'sliding' training as 'window'; at test overlapping windows of max_seq_len steps
#             (window_overlap), merged before NMS (videos of hours)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='tad_collate'),
    dataset=dict(type='FeatureDataset', ann_file=None, feature_store=None, subset=None, strategy='window',
                 max_seq_len=None, training=True, trunc_thresh=0.5, crop_ratio=[0.9, 1.0]),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='tad_collate'),
    dataset=dict(type='FeatureDataset', ann_file=None, feature_store=None, subset=None, strategy='window',
                 max_seq_len=None, training=False),
)
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='tad_collate'),
    dataset=dict(type='FeatureDataset', ann_file=None, feature_store=None, subset=None, strategy='window',
                 max_seq_len=None, training=False),
)
