"""Pose / action conventions against SciPy's Rotation (extrinsic "xyz" Euler, radians)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from jepa.data.rotations import (
    compute_new_pose,
    euler_xyz_to_matrix,
    matrix_to_euler_xyz,
    poses_to_diff,
    states_to_actions,
)


def _random_states(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    states = np.zeros((n, 7))
    states[:, :3] = rng.uniform(-0.5, 0.5, (n, 3))
    states[:, 3:6] = rng.uniform([-np.pi, -1.4, -np.pi], [np.pi, 1.4, np.pi], (n, 3))  # away from gimbal lock
    states[:, 6] = rng.uniform(0, 1, n)
    return states


def test_matrix_and_back_match_scipy():
    angles = _random_states(64)[:, 3:6]
    ours = euler_xyz_to_matrix(torch.from_numpy(angles)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_euler("xyz", angles).as_matrix(), atol=1e-12)
    back = matrix_to_euler_xyz(torch.from_numpy(ours)).numpy()
    np.testing.assert_allclose(back, Rotation.from_matrix(ours).as_euler("xyz"), atol=1e-9)


def test_actions_are_scipy_rotation_deltas():
    states = _random_states(9, seed=1)
    actions = states_to_actions(torch.from_numpy(states)).numpy()  # (8, 7)
    for t in range(8):
        r0 = Rotation.from_euler("xyz", states[t, 3:6])
        r1 = Rotation.from_euler("xyz", states[t + 1, 3:6])
        np.testing.assert_allclose(actions[t, :3], states[t + 1, :3] - states[t, :3], atol=1e-12)
        np.testing.assert_allclose(actions[t, 3:6], (r1 * r0.inv()).as_euler("xyz"), atol=1e-9)
        np.testing.assert_allclose(actions[t, 6], states[t + 1, 6] - states[t, 6], atol=1e-12)


def test_spec_example_trajectory_action():
    s0 = [0.580439, -0.002021, 0.247557, -3.066616, 0.030530, -1.912751, 0.996971]
    s1 = [0.672808, 0.028966, 0.331837, -3.051437, 0.017710, -1.912495, 0.996971]
    action = poses_to_diff(torch.tensor(s0, dtype=torch.float64), torch.tensor(s1, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(action[:3], [0.092369, 0.030987, 0.08428], atol=1e-5)
    np.testing.assert_allclose(action[3:6], [-0.0172, -0.0100, -0.00002], atol=2e-4)  # spec ac_planning.md §7
    assert action[6] == 0.0


def test_compute_new_pose_inverts_poses_to_diff():
    states = torch.from_numpy(_random_states(16, seed=2))
    start, end = states[:8], states[8:]
    start[:, 6], end[:, 6] = 0.3, 0.6  # gripper in range so the clip is inactive
    rebuilt = compute_new_pose(start, poses_to_diff(start, end))
    torch.testing.assert_close(rebuilt[:, :3], end[:, :3])
    r_rebuilt = Rotation.from_euler("xyz", rebuilt[:, 3:6].numpy()).as_matrix()
    np.testing.assert_allclose(r_rebuilt, Rotation.from_euler("xyz", end[:, 3:6].numpy()).as_matrix(), atol=1e-9)
    assert compute_new_pose(start[:1], torch.tensor([[0, 0, 0, 0, 0, 0, 5.0]], dtype=torch.float64))[0, 6] == 1.0
