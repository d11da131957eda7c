"""MViT rows for the backbone speed benchmarks (registry name, build kwargs, note).

The MViTs take clips at exactly their ``img_size`` (224) and ``num_frames`` (16).
"""
ROWS = [
    ("mvit_v1_b", {}, "MViTv1-B 16x4, 16x224^2"),
    ("mvit_v2_s", {}, "MViTv2-S 16x4, 16x224^2"),
]
