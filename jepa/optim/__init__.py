"""Optimiser helpers: official parameter groups, per-iteration schedules, EMA."""

from jepa.optim.ema import ema_update
from jepa.optim.param_groups import is_no_decay, official_param_groups
from jepa.optim.schedules import (
    ConstantSchedule,
    CosineWDSchedule,
    LinearDecaySchedule,
    MomentumSchedule,
    Schedule,
    WarmupCosineSchedule,
    WSDSchedule,
    apply_schedules,
    schedule_length,
)

__all__ = [
    "ConstantSchedule",
    "CosineWDSchedule",
    "LinearDecaySchedule",
    "MomentumSchedule",
    "Schedule",
    "WSDSchedule",
    "WarmupCosineSchedule",
    "apply_schedules",
    "ema_update",
    "is_no_decay",
    "official_param_groups",
    "schedule_length",
]
