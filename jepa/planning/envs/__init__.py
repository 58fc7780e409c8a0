"""Environments used to test planning: a numpy-rendered point reacher, and Gymnasium environments through an adapter
(:mod:`jepa.planning.envs.gym`; gymnasium is an optional extra, imported only when used)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from jepa.planning.envs.gym import (
    FETCH_ACTION_MAP,
    REACHER_ID,
    ActionMap,
    GymPlanningEnv,
    fetch_planning_env,
    fetch_state,
    reacher_planning_env,
    register_reacher,
    servo,
    vector_state,
)
from jepa.planning.envs.reacher import PointReacher, random_trajectory


class PlanningEnv(Protocol):
    """What the MPC loop needs from an environment (:class:`PointReacher`, :class:`GymPlanningEnv`).

    ``reset(state)`` / ``step(action (7,))`` / ``render(state)`` return ``(H, W, 3)`` uint8 frames; ``state`` is the
    current ``(7,)`` state; ``distance`` is the end-effector distance in metres; ``max_step`` and ``dims`` bound the
    random baseline's actions.
    """

    max_step: float
    dims: int

    @property
    def state(self) -> np.ndarray: ...

    def reset(self, state: np.ndarray) -> np.ndarray: ...

    def step(self, action: np.ndarray) -> np.ndarray: ...

    def render(self, state: np.ndarray) -> np.ndarray: ...

    def distance(self, state: np.ndarray, goal: np.ndarray) -> float: ...


__all__ = [
    "FETCH_ACTION_MAP",
    "REACHER_ID",
    "ActionMap",
    "GymPlanningEnv",
    "PlanningEnv",
    "PointReacher",
    "fetch_planning_env",
    "fetch_state",
    "random_trajectory",
    "reacher_planning_env",
    "register_reacher",
    "servo",
    "vector_state",
]
