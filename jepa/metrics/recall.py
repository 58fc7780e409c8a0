"""Mean-class recall@k (official ``ClassMeanRecall``; spec anticipation.md §7).

Per class ``c``: ``TP_c`` = samples of class ``c`` whose label is among the ``k`` highest scores, ``FN_c`` = the
others. ``recall = 100 · Σ_c TP_c / (TP_c + FN_c + 1e-8) / #{c : TP_c + FN_c > 0}`` (mean over the classes present
in the evaluated data) and top-k ``accuracy = 100 · ΣTP / Σ(TP + FN)``. The counts are summed over batches and, under
DDP, over ranks (``dist_reduce_fx="sum"``), so the result is that of the whole evaluated set.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


def mean_class_recall(tp: torch.Tensor, fn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(recall, accuracy)`` in percent from per-class counts ``tp``, ``fn`` ``(C,)`` (see the module docstring)."""
    tp, fn = tp.double(), fn.double()
    present = (tp + fn) > 0
    per_class = tp / (tp + fn + 1e-8)  # (C,)
    count = present.sum()
    recall = 100.0 * per_class[present].sum() / count if count > 0 else torch.tensor(float("nan"), dtype=tp.dtype)
    total = (tp + fn).sum()
    accuracy = 100.0 * tp.sum() / total if total > 0 else torch.tensor(float("nan"), dtype=tp.dtype)
    return recall.float(), accuracy.float()


class MeanClassRecall(Metric):
    """Mean-class recall@k and top-k accuracy, accumulated as per-class TP / FN counts.

    Args:
        num_classes: classes ``C`` of the scores.
        k: top-k (5 for EK100; ``min(k, C)`` is used).

    ``update(scores (B, C), labels (B,))`` (logits or sigmoid scores: the ranking is the same);
    ``compute()`` → ``{"recall": (), "accuracy": ()}`` in percent (NaN when nothing was seen).
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, num_classes: int, k: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"MeanClassRecall: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.k = min(k, num_classes)
        self.add_state("tp", default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("fn", default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        if scores.ndim != 2 or scores.shape[1] != self.num_classes or labels.shape != scores.shape[:1]:
            raise ValueError(
                f"MeanClassRecall: expected scores (B, C={self.num_classes}) and labels (B,), got "
                f"{tuple(scores.shape)} and {tuple(labels.shape)}"
            )
        top = torch.sigmoid(scores.float()).topk(self.k, dim=-1).indices  # (B, k), official: sigmoid then top-k
        hit = (top == labels[:, None]).any(dim=-1).long()  # (B,)
        labels = labels.long()
        self.tp += torch.bincount(labels, weights=hit.to(torch.float64), minlength=self.num_classes).long()
        self.fn += torch.bincount(labels, weights=(1 - hit).to(torch.float64), minlength=self.num_classes).long()

    def compute(self) -> dict[str, torch.Tensor]:
        recall, accuracy = mean_class_recall(self.tp, self.fn)
        return {"recall": recall, "accuracy": accuracy}
