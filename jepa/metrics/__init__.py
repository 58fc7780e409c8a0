"""torchmetrics metrics used by the tasks (mean-class recall@k for EK100 anticipation)."""

from jepa.metrics.recall import MeanClassRecall, mean_class_recall

__all__ = ["MeanClassRecall", "mean_class_recall"]
