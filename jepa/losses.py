"""Losses shared by the tasks: sigmoid focal loss (EK100 anticipation probes; spec anticipation.md §6) and the
variance / covariance penalties (VICReg) that ``PretrainTask`` can add against dimensional collapse (off in every
paper recipe)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


def sigmoid_focal_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: Literal["sum", "mean", "none"] = "sum",
) -> torch.Tensor:
    """Focal loss on one-hot targets (Lin et al.), official ``sigmoid_focal_loss`` with ``reduction="sum"``.

    ``p = σ(z)``; ``ce = BCE-with-logits(z, y)``; ``p_t = p·y + (1 − p)(1 − y)``;
    ``loss = α_t · (1 − p_t)^γ · ce`` with ``α_t = α·y + (1 − α)(1 − y)`` (no α weighting if ``alpha < 0``).

    Args:
        logits: ``(B, C)`` raw scores.
        labels: ``(B,)`` int64 class ids (turned into one-hot targets).
        alpha, gamma: focal parameters (official 0.25, 2).
        reduction: ``"sum"`` over batch and classes (official), ``"mean"`` over elements, or ``"none"`` ``(B, C)``.

    Returns:
        A scalar (``sum`` / ``mean``) or ``(B, C)`` float32.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            "sigmoid_focal_loss: expected logits (B, C) and labels (B,), "
            f"got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    logits = logits.float()
    targets = F.one_hot(labels.long(), logits.shape[1]).to(logits.dtype)  # (B, C)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction == "none":
        return loss
    raise ValueError(f"sigmoid_focal_loss: reduction must be 'sum', 'mean' or 'none', got {reduction!r}")


def variance_covariance_penalty(
    features: torch.Tensor, target_std: float = 1.0, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg's variance and covariance terms (Bardes et al., 2022) of a batch of feature vectors.

    Not part of V-JEPA 2: an optional regulariser for small-scale runs whose features collapse onto a few
    directions (see ``target_erank`` in :class:`~jepa.tasks.pretrain.PretrainTask`).

    Args:
        features: ``(..., D)``; every leading index is one sample (rows ``(M, D)``, ``M ≥ 2``).
        target_std: the hinge: dimensions whose standard deviation is below it are penalised.
        eps: added to the variance before the square root.

    Returns:
        ``(variance, covariance)`` float32 scalars: ``mean_d relu(target_std − sqrt(var_d + eps))`` and
        ``Σ_{d≠e} cov_de² / D`` of the centred rows (covariance with the ``M − 1`` denominator).
    """
    x = features.reshape(-1, features.shape[-1]).float()  # (M, D)
    if x.shape[0] < 2:
        raise ValueError(
            f"variance_covariance_penalty: need at least 2 feature vectors, got shape {tuple(features.shape)}"
        )
    x = x - x.mean(dim=0, keepdim=True)
    variance = F.relu(target_std - torch.sqrt(x.var(dim=0) + eps)).mean()
    cov = (x.T @ x) / (x.shape[0] - 1)  # (D, D)
    off_diagonal = cov - torch.diag_embed(torch.diagonal(cov))
    covariance = off_diagonal.pow(2).sum() / x.shape[1]
    return variance, covariance
