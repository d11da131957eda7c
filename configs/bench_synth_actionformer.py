# The ActionFormer-like reference recipe on the THUMOS-shaped synthetic held-out set made by bench/make_synthetic_thumos.py
# (the config bench/detector_ablation.py trains; its CPU-sized defaults are set there):
#   python bench/make_synthetic_thumos.py --holdout --feature-dim 256 --max-videos 60 \
#       -o work_dirs/bench_synth/heldout.h5
#   tad train bench_synth_actionformer.py --cfg-options feature_store=work_dirs/bench_synth/heldout.h5 \
#       ann_file=work_dirs/bench_synth/heldout.json model.in_channels=256
_base_ = [
    './_base_/models/actionformer_like.py',
    './_base_/bench_synth.py',
]

model = dict(in_channels=2048, num_classes=20, spatial_grid=None, max_seq_len=2304)
