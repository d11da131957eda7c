# The STPT schedule `tad train` ships (thumos14_stpt_*.py). The file name is historical (it held
# ActionFormer's 35-epoch schedule, now configs/_base_/schedules/actionformer_35e.py); configs
# refer to it by this name, so it keeps it.
#
# AdamW lr 2e-4, wd 0.05, batch 2; 2 warm-up epochs (linear from lr*1e-3), then cosine to 1e-8 over
# the remaining 14: 16 epochs, under half of ActionFormer's 35 (bench/detector_ablation.py measures
# both recipes in one run). With the EMA warm-up in default_runtime.py the exported EMA weights
# follow training from the first iteration, so a short schedule loses nothing to EMA lag.
#
# Scaling with your data (the numbers above are for THUMOS14: ~200 training videos, batch 2,
# ~100 iterations per epoch, ~1,600 iterations in all):
# * batch size: lr scales linearly with batch (auto_scale_lr below, base batch 2); turn it on with
#   `auto_scale_lr.enable=True` or set lr yourself.
# * dataset size: keep the number of ITERATIONS roughly fixed (~1,500-2,000): with N training
#   videos and batch B, max_epochs ~ 1600 * B / N (e.g. 60 videos -> ~50 epochs; 2,000 videos ->
#   ~2 epochs, then prefer 5+ epochs and fewer iterations per epoch is no problem). Keep
#   warmup_epochs ~ 1/8 of max_epochs, at least 1.
# `--cfg-options max_epochs=N warmup_epochs=W` (or train_cfg.max_epochs=N) also moves the
# schedulers' bounds below (tad.engine.runner.load_config); in a config file of your own,
# change them together.
max_epochs = 16
warmup_epochs = 2
val_interval = 4     # validation mAP every N epochs (and at the last epoch)

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',   # `tad train --amp` -> AmpOptimWrapper (fp16, CUDA) / bf16 autocast (CPU)
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
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
