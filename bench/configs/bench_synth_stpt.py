# STPT exactly as `tad train thumos14_stpt_i3d.py` ships it (model, schedule, runtime with the EMA
# warm-up), on the THUMOS-shaped synthetic held-out set made by bench/make_synthetic_thumos.py
# (bench/detector_ablation.py trains it; see there for the CPU-sized widths it sets):
#   python bench/make_synthetic_thumos.py --holdout --feature-dim 256 --max-videos 60 \
#       -o work_dirs/bench_synth/heldout.h5
#   tad train bench_synth_stpt.py --cfg-options feature_store=work_dirs/bench_synth/heldout.h5 \
#       ann_file=work_dirs/bench_synth/heldout.json model.in_channels=256
_base_ = [
    '../../configs/_base_/models/stpt.py',
    '../../configs/_base_/schedules/adamw_cosine_35e.py',
    './_base_synth.py',
]

model = dict(in_channels=2048, num_classes=20, spatial_grid=None, max_seq_len=2304)
