# STPT on EPIC-Kitchens-100, noun task (300 classes), SlowFast features
# (see _base_/datasets/epic100/): one detector per task, as the field trains them.
#   tad convert-annotations EPIC_100_train.csv EPIC_100_validation.csv --task noun -o data/epic100/epic100_noun.json
#   tad train epic100_noun_slowfast.py
#   tad eval epic100_noun_slowfast.py work_dirs/epic100_noun_slowfast/best_*.pth --out preds_noun.json
# Sizes follow ActionFormer's EPIC configs: 2304-step windows, 6 levels with overlapping
# regression ranges, local window 9, loss normaliser 250, AdamW lr 1e-4 for 30 epochs (5 warmup),
# trunc_thresh 0.3; many short, dense actions: up to 2000 segments kept per video.
_base_ = [
    '../_base_/models/stpt.py',
    '../_base_/datasets/epic100/slowfast.py',
    '../_base_/schedules/adamw_cosine_35e.py',
    '../_base_/default_runtime.py',
]

ann_file = 'data/epic100/epic100_noun.json'
num_classes = 300

model = dict(
    in_channels=2304, num_classes=300, max_seq_len=2304, spatial_grid=None,
    encoder=dict(window_size=9),
    assigner=dict(regression_ranges=[(0, 4), (2, 8), (4, 16), (8, 32), (16, 64), (32, 10000)]),
    train_cfg=dict(loss_normalizer=250.0),
    test_cfg=dict(pre_nms_topk=5000, max_seg_num=2000, nms_sigma=0.4),
)

max_epochs = 30
warmup_epochs = 5
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-8, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
