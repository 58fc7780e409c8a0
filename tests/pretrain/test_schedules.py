"""Schedules vs the formulas of pretraining.md §6, including the cooldown T_max quirk."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from jepa.optim import (
    CosineWDSchedule,
    LinearDecaySchedule,
    MomentumSchedule,
    WarmupCosineSchedule,
    WSDSchedule,
    apply_schedules,
    official_param_groups,
    schedule_length,
)


def test_schedule_length_official():
    assert schedule_length(40, 300, 1.25) == 15_000
    assert schedule_length(800, 300, 1.25) == 300_000
    assert schedule_length(10, 300, 1.25) == 3_750
    assert schedule_length(4, 30, 1.25) == 150


def test_warmup_then_constant_main_phase():
    s = WarmupCosineSchedule(warmup_steps=12_000, start=1e-4, ref=5.25e-4, T_max=300_000, final=5.25e-4)
    assert s.value(0) == pytest.approx(1e-4)
    assert s.value(1) == pytest.approx(1e-4 + (1 / 12_000) * 4.25e-4)
    assert s.value(6_000) == pytest.approx(1e-4 + 0.5 * 4.25e-4)
    for step in (12_000, 100_000, 240_000, 300_000, 400_000):
        assert s.value(step) == pytest.approx(5.25e-4)


def test_warmup_cosine_formula():
    s = WarmupCosineSchedule(warmup_steps=10, start=0.0, ref=1.0, T_max=110, final=0.1)
    assert s.value(5) == pytest.approx(0.5)
    assert s.value(10) == pytest.approx(1.0)
    assert s.value(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.value(110) == pytest.approx(0.1)
    assert s.value(200) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 1.9)))  # cosine rises again
    assert s.value(200) >= 0.1


def test_cooldown_quirk_and_corrected_option():
    quirk = LinearDecaySchedule.from_epochs(ref=5.25e-4, final=1e-6, epochs=40, ipe=300, ipe_scale=1.25)
    assert quirk.T_max == 15_000
    assert quirk.value(12_000) == pytest.approx(5.25e-4 + 0.8 * (1e-6 - 5.25e-4))
    assert quirk.value(12_000) == pytest.approx(1.058e-4, rel=1e-6)  # ≈ 1.06e-4 of the spec, not 1e-6
    assert quirk.value(1) == pytest.approx(5.25e-4 + (1 / 15_000) * (1e-6 - 5.25e-4))
    assert quirk.value(20_000) < 1e-6  # no clamp
    fixed = LinearDecaySchedule.from_epochs(ref=5.25e-4, final=1e-6, epochs=40, ipe=300, corrected=True)
    assert fixed.T_max == 12_000
    assert fixed.value(12_000) == pytest.approx(1e-6)
    assert fixed.value(6_000) == pytest.approx((5.25e-4 + 1e-6) / 2)


def test_cosine_wd_constant_and_clamped():
    const = CosineWDSchedule(ref=0.04, final=0.04, T_max=15_000)
    assert all(const.value(s) == pytest.approx(0.04) for s in (0, 1, 7_500, 15_000, 30_000))
    up = CosineWDSchedule(ref=0.04, final=0.4, T_max=100)
    assert up.value(50) == pytest.approx(0.4 + (0.04 - 0.4) * 0.5)
    assert up.value(100) == pytest.approx(0.4)
    assert up.value(150) == pytest.approx(0.22)  # past T_max the cosine comes back (official, not held)
    down = CosineWDSchedule(ref=0.4, final=0.04, T_max=100)
    assert down.value(100) == pytest.approx(0.04) and down.value(50) == pytest.approx(0.22)


def test_wsd_matches_ac_recipe():
    s = WSDSchedule(warmup_steps=4_500, anneal_steps=4_500, T_max=94_500, start=7.5e-5, ref=4.25e-4, final=0.0)
    assert s.value(0) == pytest.approx(7.5e-5)
    assert s.value(2_250) == pytest.approx(7.5e-5 + 0.5 * (4.25e-4 - 7.5e-5))
    assert s.value(4_500) == pytest.approx(4.25e-4)
    assert s.value(89_999) == pytest.approx(4.25e-4)  # constant phase is 85 500 steps
    assert s.value(90_000) == pytest.approx(4.25e-4)
    assert s.value(92_250) == pytest.approx(4.25e-4 / 2)
    assert s.value(94_500) == pytest.approx(0.0)


def test_momentum_schedule_official_generator():
    ema = (0.996, 1.0)
    s = MomentumSchedule.from_epochs(*ema, epochs=10, ipe=30, ipe_scale=1.25)
    total = 30 * 10 * 1.25
    official = [ema[0] + i * (ema[1] - ema[0]) / total for i in range(int(total) + 1)]
    ours = [s.value(k) for k in range(1, len(official) + 1)]
    assert ours == pytest.approx(official)
    assert s.value(10_000) == pytest.approx(official[-1])
    assert MomentumSchedule.from_epochs(0.99925, 0.99925, 800, 300).value(12345) == pytest.approx(0.99925)


def test_apply_schedules_respects_wd_exclusion():
    enc, pred = nn.Linear(4, 4), nn.LayerNorm(4)
    opt = torch.optim.AdamW(official_param_groups({"encoder": enc, "predictor": pred}))
    apply_schedules(opt, lr=3e-4, wd=0.04)
    for g in opt.param_groups:
        assert g["lr"] == 3e-4
        assert g["weight_decay"] == (0.0 if g["WD_exclude"] else 0.04)
    assert [g["name"] for g in opt.param_groups] == ["encoder", "encoder.no_decay", "predictor.no_decay"]
    opt.param_groups[0]["lr_scale"] = 0.5
    apply_schedules(opt, lr=1e-3)
    assert opt.param_groups[0]["lr"] == 5e-4 and opt.param_groups[1]["lr"] == 1e-3
    assert opt.param_groups[0]["weight_decay"] == 0.04
