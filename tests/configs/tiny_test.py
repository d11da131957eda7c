# A tiny, fast configuration for tests (not shipped: it lives in tests/configs/ and resolves
# by name only in a source checkout): small feature/embedding sizes, short windows,
# a few epochs, no dataloader workers. Point it at data with --cfg-options, e.g.
#   tad train tiny_test.py --cfg-options ann_file=ann.json feature_store=f.h5 num_classes=3 \
#       model.num_classes=3 model.in_channels=16
_base_ = [
    '../../configs/_base_/models/stpt.py',
    '../../configs/_base_/datasets/thumos14/base.py',
    '../../configs/_base_/default_runtime.py',
]

ann_file = 'tiny/annotations.json'
feature_store = 'tiny/features.h5'
train_subset = 'validation'
val_subset = 'test'
test_subset = 'test'
num_classes = 3
max_seq_len = 64

model = dict(
    in_channels=16, num_classes=3, max_seq_len=64, spatial_grid=None, embed_dim=32,
    encoder=dict(num_levels=3, num_heads=2, window_size=5, num_local_levels=2, stem_blocks=1, drop_path=0.0),
    cls_head=dict(num_layers=2),
    reg_head=dict(num_layers=2),
    assigner=dict(regression_ranges=[(0, 4), (4, 8), (8, 10000)]),
    refinement=dict(hidden_dim=16),
    test_cfg=dict(pre_nms_topk=200, max_seg_num=50),
)

train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(crop_ratio=None))
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)

max_epochs = 2
warmup_epochs = 1
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0, norm_type=2),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(max_keep_ckpts=5))
# short runs: a fast EMA, otherwise the evaluated weights barely leave their initialisation
custom_hooks = [dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.2,
                     update_buffers=True, priority='ABOVE_NORMAL')]
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0, deterministic=False)
# `tad detect` with this config extracts 16-d tiny3d features (random init) at 10 fps, 64 px
extract = dict(backbone='tiny3d', backbone_kwargs=dict(feature_dim=16), fps=10, short_side=64, crop=64)
