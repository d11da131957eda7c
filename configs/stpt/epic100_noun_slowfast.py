# STPT on EPIC-Kitchens-100, noun task (300 classes), SlowFast features: the verb config's
# model, data and schedule (epic100_verb_slowfast.py) with the noun annotations and classes.
#   tad convert-annotations EPIC_100_train.csv EPIC_100_validation.csv --task noun -o data/epic100/epic100_noun.json
#   tad train epic100_noun_slowfast.py
#   tad eval epic100_noun_slowfast.py work_dirs/epic100_noun_slowfast/best_*.pth --out preds_noun.json
_base_ = ['./epic100_verb_slowfast.py']

ann_file = 'data/epic100/epic100_noun.json'
num_classes = 300

model = dict(num_classes=300)
