"""Receding-horizon control: plan with CEM, execute the first action, observe, re-plan (spec: ac_planning.md §6.4).

Warm start: the next plan's mean is the previous mean shifted by one step (last step zero); the std restarts from
its initial value (as in TD-MPC2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from jepa.planning.cem import CEMConfig, cem
from jepa.planning.energy import WorldModel, l1_energy
from jepa.planning.envs import PlanningEnv


@dataclass
class Episode:
    """One planned (or random) episode.

    Attributes:
        frames: ``steps + 1`` observations ``(H, W, 3)`` uint8.
        states: ``(steps + 1, 7)``.
        actions: ``(steps, 7)`` executed actions.
        energies: ``(steps + 1,)`` energy of the observed frame vs the goal (encoder space).
        planned_energies: ``(steps,)`` final elite energy of each CEM call (NaN for random episodes).
        distances: ``(steps + 1,)`` true end-effector distance to the goal state (metres).
    """

    frames: list[np.ndarray] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    energies: list[float] = field(default_factory=list)
    planned_energies: list[float] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)

    def summary(self, success_threshold: float) -> dict[str, float]:
        return {
            "final_distance": self.distances[-1],
            "initial_distance": self.distances[0],
            "success": float(self.distances[-1] < success_threshold),
        }


def shift_plan(mean: torch.Tensor) -> torch.Tensor:
    """Warm start: ``(H, 4)`` mean shifted one step forward, last step zero."""
    return torch.cat([mean[1:], torch.zeros_like(mean[:1])], dim=0)


@torch.no_grad()
def run_mpc_episode(
    env: PlanningEnv,
    world_model: WorldModel,
    start: np.ndarray,
    goal: np.ndarray,
    config: CEMConfig,
    steps: int,
    seed: int = 0,
    warm_start: bool = True,
) -> Episode:
    """Drive ``env`` from state ``start`` toward the goal image of state ``goal`` with CEM-MPC.

    Args:
        env: the environment (:class:`~jepa.planning.envs.PointReacher`, a Gymnasium env behind
            :class:`~jepa.planning.envs.GymPlanningEnv`, ...), reset to ``start``.
        world_model: encoder + AC predictor.
        start / goal: 7-D states; the planner only sees the goal *image*.
        config: CEM settings.
        steps: actions executed.
        seed: seed of the CEM sampling.
        warm_start: reuse the shifted previous mean.

    Returns:
        :class:`Episode`.
    """
    device = next(world_model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    goal_feat = world_model.encode(torch.from_numpy(env.render(goal))[None])  # (1, N, D)
    obs = env.reset(start)
    episode = Episode()
    mean = None
    for step in range(steps + 1):
        feat = world_model.encode(torch.from_numpy(obs)[None])
        episode.frames.append(obs)
        episode.states.append(env.state.copy())
        episode.energies.append(float(l1_energy(feat, goal_feat)[0]))
        episode.distances.append(env.distance(env.state, goal))
        if step == steps:
            break
        state = torch.from_numpy(env.state).to(device)[None]  # (1, 7)

        def energy_fn(actions: torch.Tensor, feat: torch.Tensor = feat, state: torch.Tensor = state) -> torch.Tensor:
            return world_model.energy(feat, state, goal_feat, actions)

        result = cem(energy_fn, config, mean=mean, generator=generator, device=device)
        mean = shift_plan(result.mean) if warm_start else None
        action = result.actions[0].cpu().numpy()
        episode.actions.append(action)
        episode.planned_energies.append(float(result.elite_energy[-1]))
        obs = env.step(action)
    return episode


def run_random_episode(env: PlanningEnv, start: np.ndarray, goal: np.ndarray, steps: int, seed: int = 0) -> Episode:
    """Baseline: uniformly random actions in the action box (same steps, same start/goal)."""
    rng = np.random.default_rng(seed)
    obs = env.reset(start)
    episode = Episode(frames=[obs], states=[env.state.copy()], distances=[env.distance(env.state, goal)])
    for _ in range(steps):
        action = np.zeros(7, dtype=np.float32)
        action[: env.dims] = rng.uniform(-env.max_step, env.max_step, size=env.dims)
        obs = env.step(action)
        episode.actions.append(action)
        episode.frames.append(obs)
        episode.states.append(env.state.copy())
        episode.distances.append(env.distance(env.state, goal))
    return episode
