# The reference recipe our benchmarks compare against: the STPT detector configured as
# ActionFormer's THUMOS14 model (local window attention of 19 steps at every one of the 6
# levels, no boundary refinement, no spatial tokens; embed 512, 4 heads, 2 embedding convs,
# 2 stem blocks + 5 downsampling blocks, drop path 0.1, focal + DIoU losses with the EMA
# positive-count normaliser, centre sampling 1.5, Soft-NMS sigma 0.5 with voting 0.7,
# 2000 pre-NMS candidates, 200 segments per video). See stpt.py for every key.
_base_ = ['./stpt.py']

model = dict(
    spatial_grid=None,
    encoder=dict(attention='local', spatial_levels=0),
    refine=False,
)
