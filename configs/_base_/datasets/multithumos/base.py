# Multi-THUMOS (65 classes, the THUMOS14 videos densely relabelled): instances of different
# classes overlap in time (multi-label). Annotations from super-events-cvpr18's
# data/multithumos.json (subsets 'training' = THUMOS14 validation videos, 'testing' = test):
#   tad convert-annotations multithumos.json -o data/multithumos/multithumos.json --class-names class_list.txt
# Overlapping instances are kept by the conversion, the dataset and the per-class NMS; the
# model's assigner must set every class that claims a point (assigner multi_label=True).
# Scored at tIoU 0.1:0.1:0.9 (_base_/evaluators/multithumos.py). Charades works the same way.
_base_ = ['../feature_loaders.py', '../../evaluators/multithumos.py']

ann_file = 'data/multithumos/multithumos.json'
feature_store = 'data/multithumos/features.h5'
train_subset = 'training'
val_subset = 'testing'
test_subset = 'testing'
num_classes = 65
max_seq_len = 2304   # THUMOS-length videos: random training windows, whole videos at test
