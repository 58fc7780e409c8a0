"""Metrics used by the tasks: mean-class recall@k (EK100 anticipation), effective rank (collapse indicator)."""

from jepa.metrics.rank import effective_rank
from jepa.metrics.recall import MeanClassRecall, mean_class_recall

__all__ = ["MeanClassRecall", "effective_rank", "mean_class_recall"]
