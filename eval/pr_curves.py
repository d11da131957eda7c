"""Old home of the precision-recall curves: they now live in :mod:`tad.eval.visualize`, beside
the timeline pictures."""
from tad.eval.visualize import RECALL_POINTS, mean_interpolated_precision, plot_pr_curves  # noqa: F401

__all__ = ["mean_interpolated_precision", "plot_pr_curves"]
