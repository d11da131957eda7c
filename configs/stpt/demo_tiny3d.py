# `tad demo`: a small STPT on the synthetic demo dataset (64-d tiny3d features at
# 2.5 steps/s, 4 classes, videos of 20-60 s = 50-150 steps, actions of 5-18 steps).
# 40 epochs of 7 iterations; lr 3e-4 (1e-3 stalls on a loss plateau for ~25 epochs).
# `tad demo` points it at its own files; to rerun by hand:
#   tad train demo_tiny3d.py --cfg-options ann_file=tad_demo/annotations.json \
#       feature_store=tad_demo/features.h5 --work-dir tad_demo/train
# (old name: demo_stpt.py)
_base_ = [
    '../_base_/models/stpt.py',
    '../_base_/datasets/demo/tiny3d.py',
    '../_base_/default_runtime.py',
]

model = dict(
    in_channels=64, num_classes=4, max_seq_len=160, spatial_grid=None,
    embed_dim=128,
    encoder=dict(num_heads=4, window_size=9, stem_blocks=1, drop_path=0.1),
    refinement=dict(hidden_dim=64),
)

max_epochs = 40
warmup_epochs = 4
val_interval = 40   # one validation, at the end (the best checkpoint is then the last)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0, norm_type=2),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=10, max_keep_ckpts=1))
# a short run: a faster EMA than ActionFormer's 0.001 so the evaluated weights keep up
custom_hooks = [dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.02,
                     update_buffers=True, priority='ABOVE_NORMAL')]
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0, deterministic=False)
