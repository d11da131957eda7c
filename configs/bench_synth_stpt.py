# STPT on the THUMOS-shaped synthetic held-out set made by bench/make_synthetic_thumos.py
# (the config bench/detector_ablation.py trains; its CPU-sized defaults are set there):
#   python bench/make_synthetic_thumos.py --holdout --feature-dim 256 --max-videos 60 \
#       -o work_dirs/bench_synth/heldout.h5
#   tad train bench_synth_stpt.py --cfg-options feature_store=work_dirs/bench_synth/heldout.h5 \
#       ann_file=work_dirs/bench_synth/heldout.json model.in_channels=256
_base_ = [
    './_base_/models/stpt.py',
    './_base_/datasets/thumos14_features.py',
    './_base_/schedules/adamw_cosine_35e.py',
    './_base_/default_runtime.py',
]

ann_file = 'work_dirs/bench_synth/heldout.json'
feature_store = 'work_dirs/bench_synth/heldout.h5'
num_classes = 20
max_seq_len = 2304

model = dict(in_channels=2048, num_classes=20, spatial_grid=None, max_seq_len=2304)

# the CPU is shared: load in the main process (reading the store is cheap)
train_dataloader = dict(num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)
default_hooks = dict(logger=dict(interval=10))
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
extract = None
