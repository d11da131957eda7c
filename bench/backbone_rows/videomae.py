"""VideoMAE / VideoMAEv2 rows for the backbone speed benchmarks (registry name, build kwargs, note).

The ViTs take clips at exactly their ``img_size`` (224) and ``num_frames`` (16). ``attn_impl='math'``
is the official softmax(QK^T)V form, the in-process baseline for the fused SDPA default.
"""
ROWS = [
    ("videomae_vit_s", {}, "ViT-S/16, 16x224^2, SDPA"),
    ("videomae_vit_b", {}, "ViT-B/16, 16x224^2, SDPA"),
    ("videomae_vit_b", {"attn_impl": "math"}, "ViT-B/16, official attention form"),
    ("videomae_vit_l", {}, "ViT-L/16, 16x224^2, SDPA"),
    ("videomae_vit_g", {}, "ViT-g/14, 16x224^2, SDPA (VideoMAEv2 TAD recipe)"),
]
