"""EMA update math and official AdamW parameter-group membership."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from jepa.optim import ema_update, is_no_decay, official_param_groups


def test_ema_update_formula():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(5, 3), nn.LayerNorm(3))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o, rtol=0, atol=1e-6)
    ema_update(target, online, 1.0)  # momentum 1 leaves the target as it is
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o, rtol=0, atol=1e-6)
    ema_update(target.parameters(), online.parameters(), 0.0)  # momentum 0 copies
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(t, o, rtol=0, atol=0)


def test_ema_update_works_on_frozen_target_and_checks_shapes():
    online, target = nn.Linear(2, 2), nn.Linear(2, 2)
    target.requires_grad_(False)
    ema_update(target, online, 0.5)
    with pytest.raises(ValueError, match="parameter 0 has shape"):
        ema_update(nn.Linear(3, 2), online, 0.5)
    with pytest.raises(ValueError, match="target has 1 parameters, online has 2"):
        ema_update(nn.Linear(2, 2, bias=False), online, 0.5)


class _Pred(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.predictor_embed = nn.Linear(4, 6)
        self.mask_tokens = nn.ParameterList([nn.Parameter(torch.zeros(1, 1, 6)) for _ in range(2)])
        self.predictor_norm = nn.LayerNorm(6)
        self.frozen = nn.Parameter(torch.zeros(3, 3), requires_grad=False)


def test_official_groups_membership():
    enc = nn.Sequential(nn.Conv3d(3, 4, 2), nn.LayerNorm(4), nn.Linear(4, 4))
    pred = _Pred()
    groups = official_param_groups({"encoder": enc, "predictor": pred})
    names = [g["name"] for g in groups]
    assert names == ["encoder", "predictor", "encoder.no_decay", "predictor.no_decay"]
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert ids[0] == {id(enc[0].weight), id(enc[2].weight)}
    assert ids[1] == {id(pred.predictor_embed.weight), id(pred.mask_tokens[0]), id(pred.mask_tokens[1])}  # 3-D decayed
    assert ids[2] == {id(enc[0].bias), id(enc[1].weight), id(enc[1].bias), id(enc[2].bias)}
    assert ids[3] == {id(pred.predictor_embed.bias), id(pred.predictor_norm.weight), id(pred.predictor_norm.bias)}
    assert [g["WD_exclude"] for g in groups] == [False, False, True, True]
    assert groups[2]["weight_decay"] == 0.0 and "weight_decay" not in groups[0]
    assert is_no_decay("blocks.0.attn.qkv.bias", torch.zeros(2, 2))
    assert not is_no_decay("mask_tokens.0", torch.zeros(1, 1, 6))
    torch.optim.AdamW(groups)  # accepted by AdamW
