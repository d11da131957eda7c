# Old name of the THUMOS14 dataset base, kept so configs that inherit it keep working.
# New configs inherit configs/_base_/datasets/thumos14/<features>.py.
_base_ = ['./thumos14/base.py']
