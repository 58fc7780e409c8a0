"""Effective rank of a feature matrix: a dimensional-collapse indicator for self-supervised features.

The per-dimension standard deviation that ``PretrainTask`` logs as ``target_std`` only sees *complete* collapse
(every token mapped to one vector). JEPA runs can also collapse *dimensionally*: the features keep their variance
but spread it over a handful of directions. The effective rank (Roy & Vetterli, 2007) measures that:
``exp(H(p))`` with ``p`` the normalised eigenvalues of the feature covariance, between 1 (one direction) and the
feature width ``D`` (isotropic).
"""

from __future__ import annotations

import torch


def effective_rank(features: torch.Tensor, max_rows: int | None = 4096) -> torch.Tensor:
    """Effective rank of ``features`` ``(..., D)`` (rows = every leading index), as a float32 scalar tensor.

    Args:
        features: feature vectors; all leading dimensions are flattened into rows ``(M, D)``.
        max_rows: use at most this many rows (evenly strided) to bound the cost; ``None`` uses all of them.

    Returns:
        ``exp(-Σ p_i log p_i)`` where ``p = λ / Σλ`` and ``λ`` are the eigenvalues of the covariance of the
        centred rows (computed in float64). ``1`` for features that vary along one direction; ``D`` for isotropic
        features; ``0`` for constant features (no variance at all).
    """
    x = features.detach().reshape(-1, features.shape[-1])  # (M, D)
    if max_rows is not None and x.shape[0] > max_rows:
        x = x[:: -(-x.shape[0] // max_rows)]  # (≤ max_rows, D)
    x = x.double()
    x = x - x.mean(dim=0, keepdim=True)
    eig = torch.linalg.eigvalsh(x.T @ x).clamp_min(0)  # (D,)
    total = eig.sum()
    if total <= 0:
        return torch.zeros((), dtype=torch.float32, device=features.device)
    p = eig / total
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum()
    return torch.exp(entropy).float()
