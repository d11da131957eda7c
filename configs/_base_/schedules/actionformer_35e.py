# ActionFormer's THUMOS14 schedule as published (the reference recipe of bench/detector_ablation.py):
# AdamW lr 1e-4, wd 0.05, batch 2, 5 warmup epochs (linear from lr*1e-3), 30 epochs of cosine, clip 1.
# `--cfg-options max_epochs=N warmup_epochs=W` (or train_cfg.max_epochs=N) also moves the
# schedulers' bounds below (tad.engine.runner.load_config); in a config file of your own,
# change them together.
max_epochs = 35
warmup_epochs = 5
val_interval = 5     # validation mAP every N epochs (and at the last epoch)

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',   # `tad train --amp` -> AmpOptimWrapper (fp16, CUDA) / bf16 autocast (CPU)
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    # no weight decay on norms and biases
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-8, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

auto_scale_lr = dict(enable=False, base_batch_size=2)
