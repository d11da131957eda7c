# A small STPT for the end-to-end test (tests/test_e2e_detection.py): 32-d synthetic
# features, 3 classes, short videos; trains in well under a minute on 2 CPU cores.
_base_ = [
    '../../configs/_base_/models/stpt.py',
    '../../configs/_base_/datasets/thumos14/base.py',
    '../../configs/_base_/default_runtime.py',
]

ann_file = 'e2e/annotations.json'
feature_store = 'e2e/features.h5'
train_subset = 'validation'
val_subset = 'test'
test_subset = 'test'
num_classes = 3
max_seq_len = 512

model = dict(in_channels=32, num_classes=3, max_seq_len=512, spatial_grid=None, embed_dim=64,
             encoder=dict(drop_path=0.0), refinement=dict(hidden_dim=32))

train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(crop_ratio=None))
test_dataloader = dict(num_workers=0, persistent_workers=False)

max_epochs = 16
# no validation while training (the test runs `tad eval`); the last checkpoint is evaluated
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
val_dataloader = None
val_evaluator = None
val_cfg = None
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0, norm_type=2),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1, save_best=None))
# the shipped EMA (default_runtime.py: momentum 0.001 with warm-up) even on this short run:
# the warm-up keeps the exported EMA weights from lagging (no fast-EMA override needed)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0, deterministic=False)
extract = None
