# `tad demo --stream`: the demo's detector made causal, trained on the same demo store and
# served by `tad stream` (one feature step at a time, continual state). Online parts as in
# _base_/models/stpt_causal.py: positives from each segment's END to 2 strides after it (a causal
# point cannot see the end of an action from its centre), signed end distance, per-step activity head.
# 80 epochs (the offline demo model trains 40): at the demo's few iterations the causal model
# converges more slowly. Demo Test set (bench/stream_accuracy.py --from-demo, seed 0; 10 videos, 17
# actions, a small, noisy set): 40 epochs 44.30 avg mAP run offline, 39.40 streamed; 80 epochs 59.84 /
# 57.19, vs 61.99 for the 40-epoch offline STPT (65.14 at 80 epochs). The THUMOS-shaped figures, both
# models trained alike, are in README.md, "Online detection".
# To train it by hand:
#   tad train demo_tiny3d_causal.py --cfg-options ann_file=tad_demo/annotations.json \
#       feature_store=tad_demo/features.h5 --work-dir tad_demo/train_causal
_base_ = ['./demo_tiny3d.py']

model = dict(
    type='CausalSTPTDetector',
    encoder=dict(_delete_=True, type='CausalPyramidEncoder', num_levels=6, num_heads=4, window_size=19,
                 num_local_levels=3, coarse_window=32, stem_blocks=1, drop_path=0.1),
    cls_head=dict(type='CausalClassificationHead'),
    reg_head=dict(type='CausalRegressionHead', end_mode='signed'),
    assigner=dict(anchor='end'),   # positives: from the end to 2 strides after it (PointAssigner defaults)
    activity_head=dict(type='CausalClassificationHead'),
    refine=False,
)

max_epochs = 80
warmup_epochs = 4
val_interval = 80
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
param_scheduler = [  # demo_tiny3d.py's warm-up + cosine, over 80 epochs
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
