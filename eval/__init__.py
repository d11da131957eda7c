"""Annotations, result files and the ActivityNet/THUMOS14 detection metrics (``tad.eval``).

Kept light: importing ``tad.eval`` does not import torch or mmengine.
"""
