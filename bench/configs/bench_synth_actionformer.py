# The ActionFormer-like reference with ActionFormer's recipe as published -- 35 epochs, lr 1e-4,
# 5 warm-up epochs, EMA 0.999 (momentum 0.001) without warm-up, fp32 -- on the THUMOS-shaped
# synthetic held-out set made by bench/make_synthetic_thumos.py (bench/detector_ablation.py
# trains it against bench_synth_stpt.py):
#   python bench/make_synthetic_thumos.py --holdout --feature-dim 256 --max-videos 60 \
#       -o work_dirs/bench_synth/heldout.h5
#   tad train bench_synth_actionformer.py --cfg-options feature_store=work_dirs/bench_synth/heldout.h5 \
#       ann_file=work_dirs/bench_synth/heldout.json model.in_channels=256
_base_ = [
    '../../configs/_base_/models/actionformer_like.py',
    '../../configs/_base_/schedules/actionformer_35e.py',
    './_base_synth.py',
]

model = dict(in_channels=2048, num_classes=20, spatial_grid=None, max_seq_len=2304)
# ActionFormer's EMA: decay 0.999 from the first iteration (no warm-up)
custom_hooks = [
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.001,
         update_buffers=True, priority='ABOVE_NORMAL'),
    dict(type='LeanCheckpointHook'),
]
