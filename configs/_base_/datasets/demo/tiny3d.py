# The synthetic demo dataset of `tad demo`: 64-d tiny3d features at 2.5 steps/s, 4 classes,
# videos of 20-60 s = 50-150 steps, actions of 5-18 steps. Whole videos fit one window.
_base_ = ['../feature_loaders.py', '../../evaluators/thumos14.py']

ann_file = 'tad_demo/annotations.json'
feature_store = 'tad_demo/features.h5'
train_subset = 'validation'
val_subset = 'test'
test_subset = 'test'
num_classes = 4
max_seq_len = 160   # longer than every demo video: training sees whole videos (minus crop_ratio)

train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)

# How `tad demo` extracted the features (ExtractOptions fields), so `tad detect` can redo it:
# random-init tiny3d, native 15 fps, 8-frame clips every 6 frames, frames resized to 64 x 64.
extract = dict(backbone='tiny3d', random_init=True, fps='native', clip_stride=6, resize=64)
