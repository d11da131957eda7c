# Causal STPT (tad.detectors.CausalSTPTDetector): STPT with every layer causal, for `tad stream`.
# A point at input step t sees only steps <= t, so the continual runner (one feature step in,
# the new pyramid points out, bounded state) gives exactly the offline outputs.
# Everything not listed here is as in stpt.py (heads, assigner, losses, test_cfg).
_base_ = ['./stpt.py']

model = dict(
    type='CausalSTPTDetector',
    encoder=dict(
        _delete_=True,
        type='CausalPyramidEncoder',
        num_levels=6,          # strides 1, 2, ..., 32 input steps
        num_heads=4,
        window_size=19,        # keys per query at the fine levels: the current step and the 18 before it
        num_local_levels=3,    # levels 0..2 use window_size
        coarse_window=32,      # keys per query at levels 3..5: a bounded past of 32 steps of that level
                               # (256 .. 1024 input steps)
        stem_blocks=2,
        blocks_per_level=1,
        embed_convs=2,         # causal conv(k) + LN + ReLU input projection
        embed_kernel=3,
        mlp_ratio=4.0,
        dropout=0.0,
        drop_path=0.1,
        conv_pe=True,          # causal depthwise conv (k=3) before attention
        input_dropout=0.0,
    ),
    cls_head=dict(type='CausalClassificationHead'),
    reg_head=dict(type='CausalRegressionHead',
                  end_mode='signed'),  # (start distance, length): points after the end regress a negative end
    # Online rule: a causal point at a segment's centre cannot see its end, so positives are the
    # points that have just seen the END (from the end to end_after=2 strides after it, on the
    # level offline STPT would use: detectors/assigner.py); offline STPT keeps centre sampling.
    assigner=dict(anchor='end'),
    # per-step "which classes are running" head (level 0): start events and per-frame scores
    activity_head=dict(type='CausalClassificationHead'),
    refine=False,              # no boundary refinement in the causal model
)
