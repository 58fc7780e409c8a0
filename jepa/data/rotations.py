"""Euler-angle poses of the DROID convention in torch (spec: ac_planning.md §2, §6.3).

Angles are SciPy's ``"xyz"`` (lower case = **extrinsic**) Euler angles in radians: ``R = Rz(γ)·Ry(β)·Rx(α)``.
A 7-D state is ``[x, y, z, α, β, γ, gripper]``. Everything is batched over leading dimensions and differentiable;
no SciPy needed (the tests check against ``scipy.spatial.transform.Rotation``).
"""

from __future__ import annotations

import torch


def euler_xyz_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` extrinsic xyz Euler angles → ``(..., 3, 3)`` rotation matrices ``Rz(γ)·Ry(β)·Rx(α)``."""
    a, b, g = angles.unbind(-1)
    ca, sa, cb, sb, cg, sg = a.cos(), a.sin(), b.cos(), b.sin(), g.cos(), g.sin()
    rows = [
        cg * cb, cg * sb * sa - sg * ca, cg * sb * ca + sg * sa,
        sg * cb, sg * sb * sa + cg * ca, sg * sb * ca - cg * sa,
        -sb, cb * sa, cb * ca,
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).unflatten(-1, (3, 3))


def matrix_to_euler_xyz(matrix: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` rotation matrices → ``(..., 3)`` extrinsic xyz Euler angles (β in [−π/2, π/2]).

    Matches SciPy away from gimbal lock (|β| = π/2, where SciPy sets γ... by its own convention).
    """
    sb = (-matrix[..., 2, 0]).clamp(-1.0, 1.0)
    alpha = torch.atan2(matrix[..., 2, 1], matrix[..., 2, 2])
    beta = torch.asin(sb)
    gamma = torch.atan2(matrix[..., 1, 0], matrix[..., 0, 0])
    return torch.stack([alpha, beta, gamma], dim=-1)


def poses_to_diff(start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Actions between 7-D states: ``[Δxyz, euler(R_end·R_startᵀ), Δgripper]`` (training actions, §2).

    Args:
        start, end: ``(..., 7)`` states.

    Returns:
        ``(..., 7)`` actions.
    """
    delta_rot = euler_xyz_to_matrix(end[..., 3:6]) @ euler_xyz_to_matrix(start[..., 3:6]).transpose(-1, -2)
    return torch.cat(
        [end[..., :3] - start[..., :3], matrix_to_euler_xyz(delta_rot), end[..., 6:7] - start[..., 6:7]], dim=-1
    )


def states_to_actions(states: torch.Tensor) -> torch.Tensor:
    """``(..., T, 7)`` states → ``(..., T − 1, 7)`` actions between consecutive states."""
    return poses_to_diff(states[..., :-1, :], states[..., 1:, :])


def compute_new_pose(pose: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Integrate one action (official ``compute_new_pose``, §6.3).

    ``xyz' = xyz + Δxyz``; ``R' = R(Δθ)·R(θ)``; ``g' = clip(g + Δg, 0, 1)``.

    Args:
        pose, action: ``(..., 7)``.

    Returns:
        ``(..., 7)`` new pose.
    """
    rot = euler_xyz_to_matrix(action[..., 3:6]) @ euler_xyz_to_matrix(pose[..., 3:6])
    gripper = (pose[..., 6:7] + action[..., 6:7]).clamp(0.0, 1.0)
    return torch.cat([pose[..., :3] + action[..., :3], matrix_to_euler_xyz(rot), gripper], dim=-1)
