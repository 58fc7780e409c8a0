"""Multi-head sweep: grids, per-head warmup-cosine schedules, one optimizer equal to one optimizer per head."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from jepa.probes import HeadHParams, HeadSchedule, ProbeSweep, sweep_grid


def test_video_grid_is_lr_major_product() -> None:
    grid = sweep_grid([5e-3, 3e-3, 1e-3, 3e-4, 1e-4], [0.01, 0.1, 0.4, 0.8])
    assert len(grid) == 20
    assert (grid[0].lr, grid[0].weight_decay) == (5e-3, 0.01)
    assert (grid[1].lr, grid[1].weight_decay) == (5e-3, 0.1)
    assert (grid[4].lr, grid[4].weight_decay) == (3e-3, 0.01)
    assert grid[0].initial_lr == 5e-3 and grid[0].end_weight_decay == 0.01  # start_lr = lr, constant wd


def test_schedule_follows_official_formulas() -> None:
    hp = HeadHParams(lr=2e-3, weight_decay=1e-3, start_lr=2e-4, final_lr=0.0, final_weight_decay=0.0, warmup_epochs=2)
    ipe, epochs = 10, 6
    schedule = HeadSchedule.build(hp, epochs=epochs, ipe=ipe)
    warmup, total = 20, 60
    assert schedule.lr.value(5) == pytest.approx(2e-4 + 5 / warmup * (2e-3 - 2e-4))
    assert schedule.lr.value(warmup) == pytest.approx(2e-3)
    s = 35
    assert schedule.lr.value(s) == pytest.approx(1e-3 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))))
    assert schedule.lr.value(total) == pytest.approx(0.0, abs=1e-15)  # reaches final_lr at the last step
    assert schedule.wd.value(30) == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 30 / total)))
    assert schedule.wd.value(total) == pytest.approx(0.0, abs=1e-15)
    constant = HeadSchedule.build(HeadHParams(lr=1e-3, weight_decay=0.4), epochs=epochs, ipe=ipe)
    assert constant.wd.value(1) == constant.wd.value(59) == 0.4
    assert constant.lr.value(1) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / total)))


def _head() -> nn.Module:
    return nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 3))


def test_one_optimizer_with_head_groups_equals_one_optimizer_per_head() -> None:
    torch.manual_seed(0)
    hparams = sweep_grid([1e-2, 1e-3], [0.0, 0.5], final_weight_decay=0.05)
    sweep = ProbeSweep.build(_head, hparams)
    separate = [copy.deepcopy(head) for head in sweep.heads]
    optimizer = torch.optim.AdamW(sweep.param_groups())
    sweep.configure_schedules(epochs=2, ipe=3)
    per_head = [torch.optim.AdamW(head.parameters(), lr=hp.lr, weight_decay=hp.weight_decay) for head, hp in
                zip(separate, hparams, strict=True)]  # fmt: skip
    features, labels = torch.randn(5, 8), torch.randint(0, 3, (5,))
    for step in range(1, 7):
        values = sweep.apply_schedules(optimizer, step)
        loss = sum(nn.functional.cross_entropy(logits, labels) for logits in sweep(features))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for head, opt, schedule in zip(separate, per_head, sweep.schedules, strict=True):
            for group in opt.param_groups:
                group["lr"], group["weight_decay"] = schedule.lr.value(step), schedule.wd.value(step)
            opt.zero_grad()
            nn.functional.cross_entropy(head(features), labels).backward()
            opt.step()
        assert [g["lr"] for g in optimizer.param_groups] == [v[0] for v in values]
    for head, reference in zip(sweep.heads, separate, strict=True):
        for a, b in zip(head.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # the heads really went different ways
    assert not torch.allclose(sweep.heads[0][1].weight, sweep.heads[3][1].weight)


def test_fused_adamw_matches_the_default_optimizer() -> None:
    """`fused_adamw=True` (ProbeTask / AnticipationTask) builds torch's fused AdamW over the same head groups, with
    the same schedules: the trained heads equal the default implementation's up to rounding."""
    torch.manual_seed(0)
    hparams = sweep_grid([1e-2, 1e-3], [0.0, 0.5], final_weight_decay=0.05)
    sweeps = [ProbeSweep.build(_head, hparams) for _ in range(2)]
    sweeps[1].load_state_dict(sweeps[0].state_dict())
    initial = sweeps[0].heads[0][1].weight.detach().clone()
    optimizers = [sweep.build_optimizer(6, 2, (0.9, 0.999), 1e-8, fused=fused)
                  for sweep, fused in zip(sweeps, (None, True), strict=True)]  # fmt: skip
    assert optimizers[1].defaults["fused"] is True and not optimizers[0].defaults.get("fused")
    features, labels = torch.randn(5, 8), torch.randint(0, 3, (5,))
    for step in range(1, 7):
        for sweep, optimizer in zip(sweeps, optimizers, strict=True):
            sweep.apply_schedules(optimizer, step)
            loss = sum(nn.functional.cross_entropy(logits, labels) for logits in sweep(features))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for a, b in zip(sweeps[0].parameters(), sweeps[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(sweeps[1].heads[0][1].weight, initial)  # they trained


def test_mismatched_lengths_and_missing_schedules_are_errors() -> None:
    with pytest.raises(ValueError, match="2 heads but 1"):
        ProbeSweep([_head(), _head()], [HeadHParams(1e-3, 0.1)])
    sweep = ProbeSweep([_head()], [HeadHParams(1e-3, 0.1)])
    with pytest.raises(RuntimeError, match="configure_schedules"):
        sweep.apply_schedules(torch.optim.AdamW(sweep.param_groups()), 1)


def test_sweep_hparams_puts_explicit_heads_first_and_refuses_an_empty_sweep() -> None:
    from jepa.probes.sweep import sweep_hparams

    heads = sweep_hparams("Task", [{"lr": 0.5, "weight_decay": 0.0}], [1e-3, 1e-4], [0.01], warmup_epochs=1.0)
    assert [(h.lr, h.weight_decay) for h in heads] == [(0.5, 0.0), (1e-3, 0.01), (1e-4, 0.01)]
    assert heads[0].warmup_epochs == 0.0 and heads[1].warmup_epochs == 1.0
    with pytest.raises(ValueError, match="Task: the sweep is empty"):
        sweep_hparams("Task", None, [], [0.01])
