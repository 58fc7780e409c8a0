"""CEM: the official update rule, clipping, fixed axes, gripper snapping, convergence, determinism."""

from __future__ import annotations

import torch

from jepa.planning.cem import CEMConfig, cem, initial_std, to_actions


def _quadratic(target: torch.Tensor):
    def energy(actions: torch.Tensor) -> torch.Tensor:  # (S, H, 7) → (S,)
        return (actions[..., [0, 1, 2, 6]] - target).pow(2).sum(dim=(-2, -1))

    return energy


def test_converges_to_the_minimum_inside_the_box():
    target = torch.tensor([[0.03, -0.02, 0.01, 0.0], [-0.04, 0.0, 0.02, 0.0]])
    cfg = CEMConfig(horizon=2, samples=200, topk=10, iterations=30, momentum_mean=0.15, momentum_std=0.15)
    result = cem(_quadratic(target), cfg, generator=torch.Generator().manual_seed(0))
    assert result.actions.shape == (2, 7)
    torch.testing.assert_close(result.actions[:, :3], target[:, :3], atol=3e-3, rtol=0)
    assert torch.all(result.actions[:, 3:6] == 0)  # rotation deltas always 0
    assert result.elite_energy[-1] < result.elite_energy[0]


def test_clipping_fixed_axes_snapping_and_close_gripper():
    seen = []

    def energy(actions: torch.Tensor) -> torch.Tensor:
        seen.append(actions.clone())
        return -actions[:, 0, 0]  # prefers dx as large as possible

    cfg = CEMConfig(samples=50, topk=5, iterations=5, maxnorm=0.05, axis={2: 0.01, -1: 0.0}, horizon=2, close_gripper=1)
    result = cem(energy, cfg, generator=torch.Generator().manual_seed(0))
    allx = torch.stack(seen)
    assert allx[..., :3].abs().max() <= 0.05 + 1e-7 and allx[..., 6][..., 0].abs().max() <= 0.75
    assert torch.all(allx[..., 2] == 0.01)  # fixed dz
    assert torch.all(allx[..., 0, 6] == 0.0) and torch.all(allx[..., 1, 6] == 1.0)  # fixed g; forced close from h=1
    assert result.actions[0, 0] > 0.04 and result.actions[0, 6] == 0.0


def test_one_iteration_is_the_official_momentum_update():
    cfg = CEMConfig(samples=20, topk=4, iterations=1, momentum_mean=0.3, momentum_std=0.6,
                    momentum_mean_gripper=0.1, momentum_std_gripper=0.2, gripper_snap=0.0)  # fmt: skip
    target = torch.tensor([[0.02, 0.01, -0.01, 0.3]])
    result = cem(_quadratic(target), cfg, generator=torch.Generator().manual_seed(3))
    # replay the sampling with the same generator
    noise = torch.randn(20, 1, 4, generator=torch.Generator().manual_seed(3))
    std0 = initial_std(cfg)
    search = (std0 * noise).clamp(torch.tensor([-0.05] * 3 + [-0.75]), torch.tensor([0.05] * 3 + [0.75]))
    elites = search[torch.topk(_quadratic(target)(to_actions(search, cfg)), 4, largest=False).indices]
    mm = torch.tensor([0.3, 0.3, 0.3, 0.1])
    ms = torch.tensor([0.6, 0.6, 0.6, 0.2])
    torch.testing.assert_close(result.mean, (1 - mm) * elites.mean(0))
    torch.testing.assert_close(result.std, (1 - ms) * elites.std(0, unbiased=True) + ms * std0)


def test_deterministic_with_a_generator_and_gripper_snap():
    cfg = CEMConfig(samples=30, topk=5, iterations=3)
    energy = _quadratic(torch.tensor([[0.01, 0.0, 0.0, 0.1]]))
    a = cem(energy, cfg, generator=torch.Generator().manual_seed(1))
    b = cem(energy, cfg, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.actions, b.actions)
    assert a.actions[0, 6] == 0.0 or a.actions[0, 6].abs() >= 0.25  # |g| < 0.25 snapped to 0
