"""Effective rank (`jepa.metrics.effective_rank`): the dimensional-collapse indicator PretrainTask logs."""

import math

import numpy as np
import pytest
import torch

from jepa.metrics import effective_rank


def _reference(x: np.ndarray) -> float:
    """exp(entropy) of the normalised squared singular values of the centred rows (numpy, float64)."""
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def test_matches_a_numpy_reference_on_anisotropic_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 200, 16, generator=g) * torch.logspace(0, -2, 16)  # (B, N, D), decaying spectrum
    got = float(effective_rank(x, max_rows=None))
    assert got == pytest.approx(_reference(x.numpy()), rel=1e-5)
    assert 1.5 < got < 12


def test_extremes_rank_k_isotropic_and_constant():
    g = torch.Generator().manual_seed(1)
    basis = torch.linalg.qr(torch.randn(32, 32, generator=g))[0][:, :3]  # 3 orthonormal directions in R^32
    coeffs = torch.randn(5000, 3, generator=g)
    coeffs = (coeffs - coeffs.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(coeffs.T))).T  # whiten
    assert float(effective_rank(coeffs @ basis.T, max_rows=None)) == pytest.approx(3.0, rel=1e-3)
    iso = torch.randn(20000, 32, generator=g)
    assert float(effective_rank(iso, max_rows=None)) == pytest.approx(32, rel=0.01)
    assert float(effective_rank(torch.ones(10, 8))) == 0.0


def test_row_subsampling_is_strided_and_bounded():
    x = torch.randn(10_000, 8, generator=torch.Generator().manual_seed(2))
    sub = float(effective_rank(x, max_rows=1000))  # every 10th row
    assert sub == pytest.approx(_reference(x[::10].numpy()), rel=1e-5)
    assert math.isclose(sub, float(effective_rank(x, max_rows=None)), rel_tol=0.05)
