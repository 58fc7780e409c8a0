"""Cross-entropy-method planner of V-JEPA 2-AC (spec: ac_planning.md §6.4).

The search runs over ``(H, 4)`` = (dx, dy, dz, gripper) per horizon step; rotation deltas are always 0. Every
iteration draws all samples at once, scores them in one batched call, keeps the ``topk`` lowest energies and moves
mean/std toward the elites with separate momenta for xyz and gripper. The loop has no host round-trips (no
``.item()``, no Python branching on tensor values), so it runs asynchronously on an accelerator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

EnergyFn = Callable[[torch.Tensor], torch.Tensor]
"""``actions (S, H, 7) → energies (S,)``."""


@dataclass
class CEMConfig:
    """CEM settings; defaults are the official ``cem()`` defaults (spec §6.4 table).

    Attributes:
        horizon: planned steps H.
        samples: candidates per iteration.
        topk: elites kept per iteration.
        iterations: CEM iterations (``cem_steps``).
        momentum_mean / momentum_std: xyz momenta μ (``mean ← (1 − μ)·elite_mean + μ·mean``).
        momentum_mean_gripper / momentum_std_gripper: gripper momenta.
        maxnorm: per-coordinate xyz clip and initial xyz std.
        gripper_clip: gripper samples are clipped to ``± gripper_clip``.
        gripper_snap: a returned gripper mean with ``|g| <`` this is set to 0.
        close_gripper: horizon index from which dg is forced to 1.0 (None = never).
        axis: fixed values by search dimension (0–2 xyz, 3 or −1 gripper), e.g. ``{2: 0.0, 3: 0.0}``.
    """

    horizon: int = 1
    samples: int = 100
    topk: int = 10
    iterations: int = 100
    momentum_mean: float = 0.25
    momentum_std: float = 0.95
    momentum_mean_gripper: float = 0.15
    momentum_std_gripper: float = 0.15
    maxnorm: float = 0.05
    gripper_clip: float = 0.75
    gripper_snap: float = 0.25
    close_gripper: int | None = None
    axis: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 2 <= self.topk <= self.samples:
            raise ValueError(f"CEMConfig: need 2 <= topk <= samples, got topk={self.topk}, samples={self.samples}")
        if self.horizon < 1 or self.iterations < 1:
            raise ValueError(f"CEMConfig: horizon and iterations must be >= 1, got {self.horizon}, {self.iterations}")
        bad = [k for k in self.axis if int(k) not in (0, 1, 2, 3, -1)]
        if bad:
            raise ValueError(f"CEMConfig.axis: keys must be 0, 1, 2 (xyz) or 3 / -1 (gripper), got {bad}")


# Official presets (spec §6.4): the WorldModel default and the energy-landscape notebook.
MPC_DEFAULT = dict(horizon=2, samples=400, topk=10, iterations=10, momentum_mean=0.15, momentum_std=0.15)
NOTEBOOK = dict(horizon=2, samples=25, topk=10, iterations=2, momentum_mean=0.15, momentum_std=0.75, maxnorm=0.075)
PAPER_ROBOT = dict(horizon=1, samples=800, topk=10, iterations=10, maxnorm=0.075)


@dataclass
class CEMResult:
    """Output of :func:`cem`.

    Attributes:
        actions: ``(H, 7)`` planned actions ``[mean_xyz, 0, 0, 0, g]`` (the mean, gripper snapped).
        mean / std: ``(H, 4)`` final search distribution (warm start for the next MPC step).
        elite_energy: ``(iterations,)`` mean energy of the elites per iteration.
    """

    actions: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    elite_energy: torch.Tensor


def initial_std(config: CEMConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(H, 4)`` initial std ``[maxnorm, maxnorm, maxnorm, 1]``."""
    return torch.tensor([config.maxnorm] * 3 + [1.0], device=device).expand(config.horizon, 4).clone()


def to_actions(search: torch.Tensor, config: CEMConfig) -> torch.Tensor:
    """``(..., H, 4)`` search vectors → ``(..., H, 7)`` actions ``[dx, dy, dz, 0, 0, 0, dg]`` (with close_gripper)."""
    zeros = search.new_zeros(*search.shape[:-1], 3)
    actions = torch.cat([search[..., :3], zeros, search[..., 3:]], dim=-1)
    if config.close_gripper is not None:
        actions[..., config.close_gripper :, 6] = 1.0
    return actions


def cem(
    energy_fn: EnergyFn,
    config: CEMConfig,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> CEMResult:
    """Plan ``H`` actions minimising ``energy_fn`` with the official CEM update.

    Args:
        energy_fn: ``actions (S, H, 7) → (S,)`` energies (all samples of an iteration in one call).
        config: :class:`CEMConfig`.
        mean / std: optional ``(H, 4)`` warm start (default zeros / :func:`initial_std`).
        generator: random generator on ``device`` (determinism).
        device: where the search runs.

    Returns:
        :class:`CEMResult`.
    """
    horizon, samples, k = config.horizon, config.samples, config.topk
    mean = torch.zeros(horizon, 4, device=device) if mean is None else mean.clone().to(device)
    std = initial_std(config, device) if std is None else std.clone().to(device)
    fixed_dims = [3 if int(d) == -1 else int(d) for d in config.axis]
    fixed_values = torch.tensor([float(v) for v in config.axis.values()], device=device)
    if fixed_dims:
        mean[:, fixed_dims] = fixed_values
    low = torch.tensor([-config.maxnorm] * 3 + [-config.gripper_clip], device=device)
    momentum_mean = torch.tensor([config.momentum_mean] * 3 + [config.momentum_mean_gripper], device=device)
    momentum_std = torch.tensor([config.momentum_std] * 3 + [config.momentum_std_gripper], device=device)
    elite_energy = torch.empty(config.iterations, device=device)
    for it in range(config.iterations):
        noise = torch.randn(samples, horizon, 4, generator=generator, device=device)
        search = torch.maximum(torch.minimum(mean + std * noise, -low), low)  # (S, H, 4), clipped
        if fixed_dims:
            search[..., fixed_dims] = fixed_values
        energies = energy_fn(to_actions(search, config))  # (S,)
        best, index = torch.topk(energies, k, largest=False)  # (k,)
        elites = search[index]  # (k, H, 4)
        mean = (1 - momentum_mean) * elites.mean(0) + momentum_mean * mean
        std = (1 - momentum_std) * elites.std(0) + momentum_std * std  # unbiased (n − 1) std, as official
        elite_energy[it] = best.mean()
    gripper = torch.where(mean[:, 3:].abs() < config.gripper_snap, torch.zeros_like(mean[:, 3:]), mean[:, 3:])
    plan = torch.cat([mean[:, :3], gripper], dim=-1)  # (H, 4)
    zeros = plan.new_zeros(horizon, 3)
    actions = torch.cat([plan[:, :3], zeros, plan[:, 3:]], dim=-1)  # (H, 7); close_gripper not forced on the mean
    return CEMResult(actions=actions, mean=mean, std=std, elite_energy=elite_energy)
