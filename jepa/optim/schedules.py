"""Per-iteration learning-rate, weight-decay and EMA-momentum schedules (spec: pretraining.md §4, §6).

Every schedule is a small immutable object with ``value(step) -> float``. ``step`` is the official iteration
counter: the official schedulers are stepped at the **start** of every training iteration, so the first training
step uses ``value(1)``, the k-th uses ``value(k)``. :func:`apply_schedules` writes the values into an optimizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Schedule(Protocol):
    """Anything with ``value(step) -> float``."""

    def value(self, step: int) -> float: ...


def schedule_length(epochs: float, ipe: int, ipe_scale: float = 1.25) -> int:
    """Official ``T_max = int(ipe_scale · epochs · ipe)`` (``ipe_scale`` 1.25 in every V-JEPA config)."""
    return int(ipe_scale * epochs * ipe)


@dataclass(frozen=True)
class ConstantSchedule:
    """``value(step) = constant``."""

    constant: float

    def value(self, step: int) -> float:
        return self.constant


@dataclass(frozen=True)
class WarmupCosineSchedule:
    """Linear warmup then half-cosine decay (official ``WarmupCosineSchedule``).

    ``s < warmup_steps``: ``start + (s / warmup_steps)(ref − start)``; else
    ``max(final, final + (ref − final)·½(1 + cos(π (s − warmup_steps) / (T_max − warmup_steps))))``.
    With ``final == ref`` it is warmup then constant (the V-JEPA 2 main phase).
    """

    warmup_steps: int
    start: float
    ref: float
    T_max: int
    final: float = 0.0

    def value(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.start + (step / max(1, self.warmup_steps)) * (self.ref - self.start)
        progress = (step - self.warmup_steps) / max(1, self.T_max - self.warmup_steps)
        return max(self.final, self.final + (self.ref - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class LinearDecaySchedule:
    """Linear decay ``ref + (s / T_max)(final − ref)``, not clamped (official ``LinearDecaySchedule``, cooldown).

    QUIRK: the official cooldown uses ``T_max = int(1.25 · 40 · 300) = 15 000`` for 12 000 steps, so the LR ends at
    ≈ 1.06e-4 instead of 1e-6. Build with :meth:`from_epochs` (``corrected=False`` reproduces it,
    ``corrected=True`` uses ``T_max = epochs · ipe`` and reaches ``final``).
    """

    ref: float
    final: float
    T_max: int

    def value(self, step: int) -> float:
        return self.ref + (step / max(1, self.T_max)) * (self.final - self.ref)

    @classmethod
    def from_epochs(
        cls, ref: float, final: float, epochs: float, ipe: int, ipe_scale: float = 1.25, corrected: bool = False
    ) -> LinearDecaySchedule:
        """Official (``T_max = int(ipe_scale·epochs·ipe)``) or corrected (``T_max = int(epochs·ipe)``) decay."""
        t_max = int(epochs * ipe) if corrected else schedule_length(epochs, ipe, ipe_scale)
        return cls(ref=ref, final=final, T_max=t_max)


@dataclass(frozen=True)
class CosineWDSchedule:
    """Half-cosine from ``ref`` to ``final`` over ``T_max``, clamped toward ``final`` (official ``CosineWDSchedule``).

    ``final + (ref − final)·½(1 + cos(π s / T_max))``, then ``max(final, ·)`` when ``final ≤ ref`` else
    ``min(final, ·)``.
    """

    ref: float
    final: float
    T_max: int

    def value(self, step: int) -> float:
        wd = self.final + (self.ref - self.final) * 0.5 * (1.0 + math.cos(math.pi * step / max(1, self.T_max)))
        return max(self.final, wd) if self.final <= self.ref else min(self.final, wd)


@dataclass(frozen=True)
class WSDSchedule:
    """Warmup–stable–decay (official ``WSDSchedule``, action-conditioned training; spec ac_planning.md §5).

    With ``stable = T_max − warmup_steps − anneal_steps``: ``s < warmup_steps``: linear ``start → ref``;
    ``s < warmup_steps + stable``: ``ref``; else linear ``ref → final`` over ``anneal_steps`` (not clamped).
    """

    warmup_steps: int
    anneal_steps: int
    T_max: int
    start: float
    ref: float
    final: float = 0.0

    def value(self, step: int) -> float:
        stable_end = self.T_max - self.anneal_steps  # = warmup_steps + stable
        if step < self.warmup_steps:
            return self.start + (step / max(1, self.warmup_steps)) * (self.ref - self.start)
        if step < stable_end:
            return self.ref
        return self.ref + ((step - stable_end) / max(1, self.anneal_steps)) * (self.final - self.ref)


@dataclass(frozen=True)
class MomentumSchedule:
    """Linear EMA momentum ``start → final`` over ``total`` updates (official generator in ``train.py``).

    The k-th EMA update (``step = k``, 1-based, after the k-th optimizer step) uses
    ``start + (k − 1)(final − start) / total`` with the float ``total = ipe·epochs·ipe_scale``; past
    ``int(total) + 1`` updates (where the official generator would stop) the last value is held.
    """

    start: float
    final: float
    total: float

    def value(self, step: int) -> float:
        i = min(max(step - 1, 0), int(self.total))
        return self.start + i * (self.final - self.start) / max(self.total, 1e-12)

    @classmethod
    def from_epochs(
        cls, start: float, final: float, epochs: float, ipe: int, ipe_scale: float = 1.25
    ) -> MomentumSchedule:
        return cls(start=start, final=final, total=ipe * epochs * ipe_scale)


def apply_schedules(optimizer: torch.optim.Optimizer, lr: float | None = None, wd: float | None = None) -> None:
    """Write ``lr`` into every param group and ``wd`` into every group not marked ``WD_exclude``.

    A group's optional ``lr_scale`` multiplies the LR (official WSD behaviour; absent in V-JEPA pretraining groups).
    ``None`` leaves that hyper-parameter untouched.
    """
    for group in optimizer.param_groups:
        if lr is not None:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        if wd is not None and not group.get("WD_exclude", False):
            group["weight_decay"] = wd
