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

# Exponential moving average of the weights (ActionFormer: decay 0.999 = momentum 0.001).
# Validation and saved checkpoints use the EMA weights: a checkpoint's `state_dict` holds
# them (mmengine swaps them in when saving), so `tad eval`/`tad detect` evaluate the EMA.
custom_hooks = [
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.001,
         update_buffers=True, priority='ABOVE_NORMAL'),
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
