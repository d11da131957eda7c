# Causal STPT on the THUMOS-shaped synthetic held-out set (bench/stream_accuracy.py trains it
# beside bench_synth_stpt.py with the same data, schedule and sizes).
_base_ = [
    '../../configs/_base_/models/stpt_causal.py',
    '../../configs/_base_/schedules/adamw_cosine_35e.py',
    './_base_synth.py',
]

model = dict(in_channels=2048, num_classes=20, spatial_grid=None, max_seq_len=2304)
