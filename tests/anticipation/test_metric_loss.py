"""Mean-class recall@k against hand-computed values (absent classes, two ranks), and the focal loss formula."""

from __future__ import annotations

import math

import pytest
import torch

from jepa.losses import sigmoid_focal_loss
from jepa.metrics import MeanClassRecall


def fixed_logits() -> tuple[torch.Tensor, torch.Tensor]:
    # 6 classes, k = 2. Rows: label, ranking.
    logits = torch.tensor(
        [
            [5.0, 4.0, 0.0, 0.0, 0.0, 0.0],  # label 0: top2 {0,1} hit
            [5.0, 4.0, 0.0, 0.0, 0.0, 0.0],  # label 2: miss
            [0.0, 0.0, 3.0, 1.0, 0.0, 0.0],  # label 2: hit
            [0.0, 0.0, 3.0, 1.0, 0.0, 0.0],  # label 3: hit (second)
            [0.0, 9.0, 0.0, 0.0, 8.0, 0.0],  # label 0: miss
        ]
    )
    labels = torch.tensor([0, 2, 2, 3, 0])
    return logits, labels


def test_recall_by_hand_with_absent_classes() -> None:
    logits, labels = fixed_logits()
    metric = MeanClassRecall(6, k=2)
    metric.update(logits[:2], labels[:2])
    metric.update(logits[2:], labels[2:])
    out = metric.compute()
    # class 0: 1/2, class 2: 1/2, class 3: 1/1; classes 1, 4, 5 absent → mean over 3 classes.
    assert out["recall"].item() == pytest.approx(100 * (0.5 + 0.5 + 1.0) / 3, rel=1e-6)
    assert out["accuracy"].item() == pytest.approx(100 * 3 / 5)
    assert metric.tp.tolist() == [1, 0, 1, 1, 0, 0] and metric.fn.tolist() == [1, 0, 1, 0, 0, 0]


def test_two_ranks_sum_counts() -> None:
    logits, labels = fixed_logits()
    rank0, rank1 = MeanClassRecall(6, k=2), MeanClassRecall(6, k=2)
    rank0.update(logits[:3], labels[:3])
    rank1.update(logits[3:], labels[3:])
    rank0.merge_state(rank1)  # what the all-reduce with dist_reduce_fx="sum" does
    assert rank0.compute()["recall"].item() == pytest.approx(100 * 2 / 3, rel=1e-6)
    # Averaging per-rank recalls instead would be wrong: rank 0 alone gives (1 + 0.5) / 2, rank 1 (1 + 0) / 2.
    assert rank0._reductions["tp"] is not None and rank0._defaults["tp"].dtype == torch.long


def test_focal_loss_matches_formula() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 4) * 3
    labels = torch.tensor([0, 3, 1])
    expected = 0.0
    for b in range(3):
        for c in range(4):
            z, y = logits[b, c].item(), float(labels[b] == c)
            p = 1 / (1 + math.exp(-z))
            ce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
            p_t = p * y + (1 - p) * (1 - y)
            alpha_t = 0.25 * y + 0.75 * (1 - y)
            expected += alpha_t * (1 - p_t) ** 2 * ce
    assert sigmoid_focal_loss(logits, labels).item() == pytest.approx(expected, rel=1e-5)
    assert sigmoid_focal_loss(logits, labels, reduction="none").shape == (3, 4)
    assert sigmoid_focal_loss(logits, labels, reduction="mean").item() == pytest.approx(expected / 12, rel=1e-5)
