"""Projectors: token reduction by the pooling factor, width mapping, the shared pooler, shape errors."""

from __future__ import annotations

import pytest
import torch

from jepa.mllm.projector import AttentiveProjector, MLPProjector, build_projector
from jepa.probes.pooler import AttentivePooler


def test_attentive_projector_pools_by_factor_and_maps_width() -> None:
    torch.manual_seed(0)
    projector = build_projector("attentive", in_dim=48, out_dim=20, num_input_tokens=64, pooling_factor=8, num_heads=4)
    assert isinstance(projector, AttentiveProjector)
    assert isinstance(projector.pooler, AttentivePooler)  # the one shared implementation, not a copy
    assert projector.pooler.num_queries == 8
    out = projector(torch.randn(3, 64, 48))
    assert out.shape == (3, 8, 20)
    assert projector.num_output_tokens(64) == 8
    # the pooler has no positions: permuting the input tokens leaves the output unchanged
    tokens = torch.randn(2, 64, 48)
    torch.testing.assert_close(projector(tokens), projector(tokens[:, torch.randperm(64)]), atol=1e-5, rtol=1e-5)


def test_mlp_projector_keeps_every_token() -> None:
    projector = build_projector("mlp", in_dim=48, out_dim=20, num_input_tokens=64)
    assert isinstance(projector, MLPProjector)
    tokens = torch.randn(2, 64, 48)
    out = projector(tokens)
    assert out.shape == (2, 64, 20)
    torch.testing.assert_close(out[:, 5], projector(tokens[:, 5:6])[:, 0])  # token-wise


def test_projector_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="divisible by pooling_factor=5"):
        AttentiveProjector(48, 20, num_input_tokens=64, pooling_factor=5, num_heads=4)
    projector = AttentiveProjector(48, 20, num_input_tokens=64, pooling_factor=4, num_heads=4)
    with pytest.raises(ValueError, match=r"N=64"):
        projector(torch.randn(1, 32, 48))
    with pytest.raises(ValueError, match="kind must be"):
        build_projector("linear", 48, 20, 64)  # type: ignore[arg-type]
