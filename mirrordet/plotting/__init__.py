"""mirrordet.plotting: run plots (results, PR curve, confusion matrix, labels), drawn without pyplot."""

from mirrordet.plotting.confusion import plot_confusion_matrix
from mirrordet.plotting.labels import plot_labels
from mirrordet.plotting.pr_curve import plot_pr_curve
from mirrordet.plotting.results import plot_results

__all__ = ["plot_confusion_matrix", "plot_labels", "plot_pr_curve", "plot_results"]
