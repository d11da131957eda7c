# tiny_test_causal.py on X3D-XS res5 features (192-d, 32 px crop, 10 fps): the continual-backbone stream
# tests run it in clip mode (x3d_xs) and, with `tad stream --backbone cox3d_xs`, frame by frame.
_base_ = ['./tiny_test_causal.py']

model = dict(in_channels=192)
extract = dict(_delete_=True, backbone='x3d_xs', backbone_kwargs=dict(feature='s5'), fps=10, short_side=32,
               crop=32, store_dtype='float32')
