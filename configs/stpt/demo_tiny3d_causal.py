# `tad demo --stream`: the demo's detector made causal, trained on the same demo store and
# served by `tad stream` (one feature step at a time, continual state). Online parts as in
# _base_/models/stpt_causal.py: positives from each segment's END to 2 strides after it (a causal
# point cannot see the end of an action from its centre), signed end distance, per-step activity head.
# Demo Test set (bench/stream_accuracy.py --from-demo, seed 0): 44.30 avg mAP run offline, 39.40 streamed,
# vs 61.99 for the offline STPT (10 Test videos, 17 actions: a small, noisy set; the THUMOS-shaped
# figures are in README.md, "Online detection").
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
