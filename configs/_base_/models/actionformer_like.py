# The reference our benchmarks compare against: tad.detectors.DenseDetector configured as
# ActionFormer's THUMOS14 model -- local window attention of 19 steps at every one of the 6 levels,
# no boundary refinement, no spatial tokens; embed 512, 4 heads, 2 embedding convs, 2 stem blocks +
# 5 downsampling blocks, drop path 0.1, focal + DIoU losses with the EMA positive-count normaliser,
# centre sampling 1.5, Soft-NMS sigma 0.5 with voting 0.7, 2000 pre-NMS candidates, 200 segments
# per video. Every other value is the parts' constructor default (see stpt.py for where).
# Train it with ActionFormer's published recipe: 35 epochs, lr 1e-4, EMA 0.999 (momentum 0.001)
# without warm-up, fp32 (bench/detector_ablation.py sets exactly that for this variant).
model = dict(
    type='DenseDetector',
    in_channels=2048,
    num_classes=20,
    spatial_grid=None,
    max_seq_len=2304,
    embed_dim=512,
    encoder=dict(type='PyramidEncoder', attention='local', spatial_levels=0),
    cls_head=dict(type='ClassificationHead'),
    reg_head=dict(type='RegressionHead'),
    assigner=dict(type='PointAssigner',
                  regression_ranges=[(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)]),
    test_cfg=dict(type='SegmentPostProcessor'),
)
