"""AdamW parameter groups with the official V-JEPA weight-decay rule (spec: pretraining.md §5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Official rule: no weight decay for names containing ``"bias"`` and for 1-D tensors (norms).

    Mask tokens ``(1, 1, D)`` are 3-D and therefore decayed.
    """
    return "bias" in name or param.ndim == 1


def official_param_groups(modules: Mapping[str, nn.Module], exclude_bias_and_norm: bool = True) -> list[dict[str, Any]]:
    """Parameter groups in the official order: every module's decayed params, then every module's excluded ones.

    Args:
        modules: named modules, e.g. ``{"encoder": encoder, "predictor": predictor}`` (order is kept).
        exclude_bias_and_norm: official ``zero_init_bias_wd``: biases / 1-D params get weight decay 0 and
            ``WD_exclude=True`` so the WD schedule skips them. ``False`` keeps them in the scheduled groups' rule
            (``WD_exclude=False``, weight decay from the schedule).

    Returns:
        A list of dicts for ``torch.optim.AdamW``: ``{"params", "name", "WD_exclude"[, "weight_decay"]}`` with
        ``name`` = ``"<module>"`` (decayed) or ``"<module>.no_decay"``. Empty groups are dropped; parameters that do
        not require grad are skipped; a parameter shared by two modules appears once (first module wins).
    """
    seen: set[int] = set()
    decay: list[dict[str, Any]] = []
    no_decay: list[dict[str, Any]] = []
    for mod_name, module in modules.items():
        if not isinstance(module, nn.Module):
            raise TypeError(f"official_param_groups: modules[{mod_name!r}] is {type(module).__name__}, not nn.Module")
        dec: list[nn.Parameter] = []
        nodec: list[nn.Parameter] = []
        for name, p in module.named_parameters():
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (nodec if is_no_decay(name, p) else dec).append(p)
        if dec:
            decay.append({"params": dec, "name": mod_name, "WD_exclude": False})
        if nodec:
            group: dict[str, Any] = {"params": nodec, "name": f"{mod_name}.no_decay"}
            if exclude_bias_and_norm:
                group.update(WD_exclude=True, weight_decay=0.0)
            else:
                group["WD_exclude"] = False
            no_decay.append(group)
    return decay + no_decay
