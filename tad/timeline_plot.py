"""Old home of the timeline pictures: they now live in :mod:`tad.eval.visualize`, beside the
precision-recall curves, and take their true/false positives from the scorer's own matching."""
from tad.eval.visualize import (FP_COLOR, GT_COLOR, ROW_INCHES, THUMB_INCHES, TP_COLOR, SegmentSet,  # noqa: F401
                                match_predictions, plot_timeline, plot_video_predictions, png_size)

__all__ = ["SegmentSet", "match_predictions", "plot_timeline", "plot_video_predictions", "png_size"]
