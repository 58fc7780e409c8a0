"""Exponential moving average of parameters (V-JEPA target encoder; spec: pretraining.md §4)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def _params(x: nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return list(x.parameters()) if isinstance(x, nn.Module) else list(x)


@torch.no_grad()
def ema_update(
    target: nn.Module | Iterable[torch.Tensor], online: nn.Module | Iterable[torch.Tensor], momentum: float
) -> None:
    """In place ``θ_t ← m·θ_t + (1 − m)·θ_c`` over ``zip(target params, online params)`` (official order).

    Args:
        target: EMA module or its parameters (updated in place).
        online: the trained module or its parameters, same count and shapes, in the same order.
        momentum: ``m`` in [0, 1].

    Buffers are not touched (V-JEPA encoders have none).
    """
    t_params, o_params = _params(target), _params(online)
    if len(t_params) != len(o_params):
        raise ValueError(f"ema_update: target has {len(t_params)} parameters, online has {len(o_params)}")
    for i, (t, o) in enumerate(zip(t_params, o_params, strict=True)):
        if t.shape != o.shape:
            raise ValueError(f"ema_update: parameter {i} has shape {tuple(t.shape)} (target) vs {tuple(o.shape)}")
    if not t_params:
        return
    t_data = [t.detach() for t in t_params]
    o_data = [o.detach() for o in o_params]
    torch._foreach_mul_(t_data, momentum)
    torch._foreach_add_(t_data, o_data, alpha=1.0 - momentum)
