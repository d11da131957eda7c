# STPT: spatio-temporal pyramid transformer detector (tad.detectors.STPTDetector).
# Defaults are THUMOS14-sized (2048-d I3D-like input, 20 classes, 2304-step crops).
# Child configs override only what they must, e.g.
#   model = dict(in_channels=2304, num_classes=20, spatial_grid=None)
# Sub-dicts merge key by key, e.g. model = dict(encoder=dict(window_size=9)).
model = dict(
    type='STPTDetector',
    in_channels=2048,      # feature channels C of the store (features (T, C) or (T, C, g, g))
    num_classes=20,        # number of action classes (index = class id of the annotations)
    spatial_grid=None,     # g when the store keeps a g x g spatial grid, else None. A grid given to a
                           # model with None is averaged away; g with plain (T, C) inputs also works.
    max_seq_len=2304,      # training crop length in feature steps (the dataset crops to it). Prediction
                           # runs on whole videos of any length in one pass (blocked local attention).
    embed_dim=512,         # width of the encoder and the heads (forced into every sub-module)
    encoder=dict(
        type='PyramidEncoder',
        num_levels=6,          # pyramid levels, strides 1, 2, ..., 32 input steps
        num_heads=4,           # attention heads
        window_size=19,        # local attention window, in steps of the level (t-9 .. t+9)
        attention='mixed',     # 'mixed': local in levels < num_local_levels, global above;
                               # 'local': local everywhere (ActionFormer-like); 'global': global everywhere
        num_local_levels=3,    # levels 0..2 local (strides 1, 2, 4), levels 3..5 global (<= 288 steps)
        stem_blocks=2,         # transformer blocks at level 0
        blocks_per_level=1,    # blocks after each halving (masked max-pool k=3 s=2)
        embed_convs=2,         # input projection: conv(k) + LN + ReLU layers, per spatial location
        embed_kernel=3,
        spatial_levels=1,      # levels that keep g*g spatial tokens (attention over window x g*g
                               # tokens); space is pooled away (learned attention pooling) after them
        mlp_ratio=4.0,         # MLP hidden = mlp_ratio * embed_dim
        dropout=0.0,           # dropout in attention projections and MLPs
        drop_path=0.1,         # stochastic depth on every residual branch
        conv_pe=True,          # depthwise temporal conv before attention (positional signal)
        input_dropout=0.0,     # dropout on the input features
    ),
    cls_head=dict(
        type='ClassificationHead',  # shared across levels; sigmoid scores per class
        head_dim=None,         # None = embed_dim
        num_layers=3,          # 2 conv + LN + ReLU, then the output conv
        kernel_size=3,
        prior_prob=0.01,       # output bias = -log((1 - p) / p)
        with_ln=True,
    ),
    reg_head=dict(
        type='RegressionHead',  # shared across levels; relu(scale_l * y) distances in strides
        head_dim=None, num_layers=3, kernel_size=3, with_ln=True,
        init_distance=1.0,     # output bias: distances start near one stride (keeps ReLU alive)
    ),
    assigner=dict(
        type='PointAssigner',  # all values in input grid steps
        regression_ranges=[(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)],  # one per level
        center_sample=True,
        center_sample_radius=1.5,  # positives within 1.5 strides of the segment centre
    ),
    cls_loss=dict(type='SigmoidFocalLoss', alpha=0.25, gamma=2.0),
    reg_loss=dict(type='DIoULoss1d'),
    refine=False,          # STPT boundary refinement (BoundaryRefinement below) on/off. Off by default:
                           # on the THUMOS-shaped synthetic benchmark (bench/detector_ablation.py, easy,
                           # 128-d, embed 64, 576-step crops, 24 epochs) no-refine beat refine on both
                           # seeds (avg mAP 51.74 vs 49.57 seed 0, 54.58 vs 43.42 seed 1; refinement with
                           # detach_features: 43.76, 47.96), and on the same trained checkpoints turning
                           # the refined corrections off changed avg mAP by only -0.2..+0.4 points (5
                           # checkpoints): the head learns ~nothing at this budget while adding 34%
                           # parameters. It helped (95.2 vs 88.7) only on an easy 3-class set.
                           # Re-measure at full size (--full, GPU) before turning it back on.
    refinement=dict(
        type='BoundaryRefinement',
        hidden_dim=128,                   # level-0 features are reduced to this width before sampling
        sample_offsets=(-0.5, 0.0, 0.5),  # samples at boundary + o * stride, linear interpolation
        detach_features=False,            # True: the refinement loss does not reach the encoder
                                          # (refinement becomes a pure add-on to the coarse heads)
    ),                     # refined points: positives in training, the post-processor's candidates
                           # (pre_nms_thresh / pre_nms_topk per level) at inference
    train_cfg=dict(
        loss_normalizer=100.0,            # initial EMA of the number of positives (losses are divided by it)
        loss_normalizer_momentum=0.9,
        reg_loss_weight=1.0,              # DIoU loss weight
        refine_loss_weight=0.25,          # L1 loss on the refinement corrections (in strides); 0.25 beat
                                          # 1.0 on a medium synthetic set (it otherwise dominates the total
                                          # loss and, through gradient clipping, slows the main heads)
        label_smoothing=0.0,
    ),
    test_cfg=dict(
        type='SegmentPostProcessor',
        pre_nms_topk=2000,     # best (point, class) pairs kept per level
        pre_nms_thresh=0.001,  # minimum class probability before NMS
        min_length=0.05,       # minimum segment length in grid steps
        nms_sigma=0.5,         # Gaussian Soft-NMS: score *= exp(-IoU^2 / sigma), per class
        nms_min_score=0.001,   # segments decayed below this are dropped
        class_agnostic_nms=False,
        max_seg_num=200,       # segments kept per video
        voting_thresh=0.7,     # score voting IoU threshold (0 disables voting)
    ),
)
