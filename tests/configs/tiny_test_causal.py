# tiny_test.py with the causal STPT (tests of `tad train` / `tad stream` on tiny data).
_base_ = ['./tiny_test.py']

model = dict(
    type='CausalSTPTDetector',
    encoder=dict(_delete_=True, type='CausalPyramidEncoder', num_levels=3, num_heads=2, window_size=5,
                 num_local_levels=2, coarse_window=8, stem_blocks=1, drop_path=0.0),
    cls_head=dict(type='CausalClassificationHead'),
    reg_head=dict(type='CausalRegressionHead', end_mode='signed'),
    assigner=dict(anchor='end', end_before=1.5, end_after=1.0),   # the online parts of stpt_causal.py
    activity_head=dict(type='CausalClassificationHead'),
    refine=False,
)
