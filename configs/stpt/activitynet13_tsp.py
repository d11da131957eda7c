# STPT on ActivityNet-1.3 with TSP features, class-agnostic + external classifier fusion (the
# field's recipe; see _base_/datasets/activitynet/tsp.py):
#   tad train activitynet13_tsp.py
#   tad eval activitynet13_tsp.py work_dirs/activitynet13_tsp/best_*.pth \
#       --classifier-scores data/activitynet/cuhk_val_simp_share.json --out preds.json
# Scored at tIoU 0.5:0.05:0.95 on 'validation' (_base_/evaluators/activitynet.py).
# Sizes follow ActionFormer's ActivityNet model: 192 steps, 6 levels (strides 1..32), embed 256,
# regression ranges doubling from 4 steps, ActionFormer's ANet schedule (15 epochs, 5 warmup,
# lr 1e-3, batch 16), Soft-NMS sigma 0.75, voting 0.9, 100 segments per video.
_base_ = [
    '../_base_/models/stpt.py',
    '../_base_/datasets/activitynet/tsp.py',
    '../_base_/default_runtime.py',
]

model = dict(
    in_channels=512, num_classes=1, max_seq_len=192, spatial_grid=None, embed_dim=256,
    encoder=dict(window_size=9, num_local_levels=3),   # levels 3..5 (strides 8..32: 24..6 steps) global
    assigner=dict(regression_ranges=[(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)]),
    train_cfg=dict(loss_normalizer=200.0, label_smoothing=0.0),
    test_cfg=dict(pre_nms_topk=2000, nms_sigma=0.75, max_seg_num=100, voting_thresh=0.9,
                  class_agnostic_nms=True),
)

max_epochs = 15
warmup_epochs = 5
val_interval = 5
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0, norm_type=2),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-8, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
