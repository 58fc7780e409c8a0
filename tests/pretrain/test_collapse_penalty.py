"""The optional (not official) VICReg variance / covariance penalty of PretrainTask, against a hand computation."""

import pytest
import torch
from test_pretrain_task import SCHEDULE, _batch, _models

from jepa.losses import variance_covariance_penalty
from jepa.tasks.pretrain import PretrainTask


def _by_hand(x: torch.Tensor) -> tuple[float, float]:
    """VICReg's terms written out with loops over dimensions (float64)."""
    x = x.reshape(-1, x.shape[-1]).double()
    m, d = x.shape
    mean = x.mean(0)
    var_term = sum(max(0.0, 1.0 - float(((x[:, k] - mean[k]) ** 2).sum() / (m - 1) + 1e-4) ** 0.5) for k in range(d))
    cov_term = 0.0
    for a in range(d):
        for b in range(d):
            if a != b:
                cov_term += float(((x[:, a] - mean[a]) * (x[:, b] - mean[b])).sum() / (m - 1)) ** 2
    return var_term / d, cov_term / d


def test_penalty_matches_the_definition():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 30, 6, generator=g) @ torch.randn(6, 6, generator=g) * 0.4  # correlated, some dims < 1 std
    var_term, cov_term = variance_covariance_penalty(x)
    want_var, want_cov = _by_hand(x)
    assert float(var_term) == pytest.approx(want_var, rel=1e-5) and want_var > 0
    assert float(cov_term) == pytest.approx(want_cov, rel=1e-5) and want_cov > 0
    y = torch.randn(500, 6, generator=g, dtype=torch.float64)
    y = y - y.mean(0)
    white = y @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(y.T))).T  # covariance exactly I
    v, c = variance_covariance_penalty(white)
    assert float(v) == 0.0 and float(c) < 1e-10
    with pytest.raises(ValueError, match="at least 2"):
        variance_covariance_penalty(torch.randn(1, 6))


def test_task_adds_the_weighted_penalty_of_every_context_pass():
    enc, pred = _models()
    batch = _batch()
    plain = PretrainTask(encoder=enc, predictor=pred, **SCHEDULE)
    weighted = PretrainTask(encoder=enc, predictor=pred, variance_weight=2.0, covariance_weight=0.5, **SCHEDULE)
    torch.manual_seed(0)
    with torch.no_grad():
        loss0, stats0 = plain.compute_loss(batch)
    torch.manual_seed(0)
    loss1, stats1 = weighted.compute_loss(batch)
    assert "variance_penalty" not in stats0
    terms = [variance_covariance_penalty(enc(d["clips"][0], masks=[me])) for d, mes, _ in batch for me in mes]
    var_term = torch.stack([t[0] for t in terms]).mean()
    cov_term = torch.stack([t[1] for t in terms]).mean()
    assert float(stats1["jepa_loss"]) == pytest.approx(float(loss0), rel=1e-6)
    assert float(loss1) == pytest.approx(float(loss0) + 2.0 * float(var_term) + 0.5 * float(cov_term), rel=1e-5)
    assert float(stats1["variance_penalty"]) == pytest.approx(float(var_term), rel=1e-5)
    loss1.backward()
    assert enc.patch_embed.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="variance_weight"):
        PretrainTask(encoder=enc, predictor=pred, variance_weight=-1.0, **SCHEDULE)
