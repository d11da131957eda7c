# Data and runtime shared by the bench_synth_* configs (each names its own schedule): the THUMOS-shaped synthetic
# held-out set made by bench/make_synthetic_thumos.py. The model comes from each config.
_base_ = [
    '../../configs/_base_/datasets/thumos14/base.py',
    '../../configs/_base_/default_runtime.py',
]

ann_file = 'work_dirs/bench_synth/heldout.json'
feature_store = 'work_dirs/bench_synth/heldout.h5'
num_classes = 20
max_seq_len = 2304

# the CPU is shared: load in the main process (reading the store is cheap)
train_dataloader = dict(num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)
default_hooks = dict(logger=dict(interval=10))
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
extract = None
