# Runtime shared by every tad config: registries, hooks, logging, EMA, environment.
default_scope = 'tad'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # progress, losses, lr, ETA every `interval` iterations (text log + TensorBoard)
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # one checkpoint per epoch (newest 3 kept) + the best by validation average mAP
    # (best_average_mAP_epoch_N.pth; `tad train` prints its path at the end)
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True, max_keep_ckpts=3,
                    save_last=True, save_best='average_mAP', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# Exponential moving average of the weights, with a warm-up so it never lags on small data.
# averaged = (1 - m) * averaged + m * weights after every iteration, with
#   m_t = max(momentum, gamma / (gamma + t))     (mmengine MomentumAnnealingEMA; t = EMA updates so far)
# i.e. decay_t = min(0.999, t / (10 + t)): the EMA starts as a copy of the weights and averages
# over roughly the last t / 10 iterations until t = 9,990, then settles at ActionFormer's 0.999.
# Without the warm-up a 1,050-iteration run (60 THUMOS videos, 35 epochs, batch 2) still held
# 0.999^1050 = 35 % of the random initial weights, and its exported EMA scored 14.7 average mAP
# against 21.4 for the raw weights. Validation and saved checkpoints use the EMA weights: a
# checkpoint's `state_dict` holds them (mmengine swaps them in when saving), so `tad eval` /
# `tad detect` evaluate the EMA. LeanCheckpointHook keeps optimizer state only in the newest
# step checkpoint (the one `tad train --resume` continues); older ones keep weights + EMA.
# EMASelectionHook: at the end of training the exported checkpoint (best by validation, else the
# last) is scored with its EMA and with its raw weights on the validation set; its `state_dict`
# then holds whichever scored higher (meta['exported_weights'] = 'ema' or 'raw', both scores in
# meta['weight_selection']; `tad train` prints them), so the export is never worse than raw.
custom_hooks = [
    dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=0.001, gamma=10,
         update_buffers=True, priority='ABOVE_NORMAL'),
    dict(type='LeanCheckpointHook'),
    dict(type='EMASelectionHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on CUDA; tad.engine.runner switches to gloo on CPU-only runs (torchrun)
    dist_cfg=dict(backend='nccl'),
)

visualizer = dict(type='Visualizer',
                  vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
log_level = 'INFO'

load_from = None   # a checkpoint to initialise from (not resume)
resume = False     # `tad train --resume` continues the newest checkpoint of the work dir
randomness = dict(seed=2024, deterministic=False)   # `tad train --seed N` overrides
