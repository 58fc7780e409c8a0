"""Gymnasium adapter: jepa/Reacher-v0 round trip through gymnasium into MPC, action mapping, servo, bad envs."""

from __future__ import annotations

import os
import sys
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from jepa.planning.cem import CEMConfig
from jepa.planning.energy import WorldModel
from jepa.planning.envs import PointReacher
from jepa.planning.envs.gym import (
    FETCH_ACTION_MAP,
    REACHER_ID,
    ActionMap,
    GymPlanningEnv,
    fetch_state,
    reacher_planning_env,
    register_reacher,
    require_gymnasium,
    servo,
    vector_state,
)
from jepa.planning.mpc import run_mpc_episode, run_random_episode
from jepa.predictors.action_conditioned import ac_predictor_tiny


class PointMass(gymnasium.Env):
    """A 2-D point mass rendered with numpy: action Box(-1, 1, (2,)) moves it by 0.1 × action (metres)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = "rgb_array", size: int = 40) -> None:
        self.render_mode, self.size = render_mode, size
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.pos = np.zeros(2, dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.5, 0.5, size=2).astype(np.float32)
        return self.pos.copy(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.1 * np.asarray(action, dtype=np.float32), -1.0, 1.0).astype(np.float32)
        return self.pos.copy(), 0.0, False, False, {"is_success": float(np.linalg.norm(self.pos) < 0.05)}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        image = np.full((self.size, 2 * self.size, 3), 200, dtype=np.uint8)  # non-square: the adapter crops
        col, row = ((self.pos + 1.0) / 2.0 * (self.size - 1)).round().astype(int)
        image[max(row - 2, 0) : row + 3, self.size // 2 + max(col - 2, 0) : self.size // 2 + col + 3] = (255, 0, 0)
        return image


POINT_MAP = ActionMap(size=2, xyz_index=(0, 1, None), xyz_scale=10.0)  # env unit = 0.1 m


def _world_model(image_size: int) -> WorldModel:
    """A tiny random world model: 1-block ViT encoder (2 × 2 patches of 16 px) + 1-block AC predictor."""
    import jepa

    torch.manual_seed(0)
    encoder = jepa.create_encoder("vit_tiny", img_size=image_size, num_frames=2, depth=1, embed_dim=32, num_heads=2)
    predictor = ac_predictor_tiny(encoder_dim=32, embed_dim=32, num_heads=2, depth=1, img_size=image_size)
    return WorldModel(encoder.eval(), predictor.eval())


def test_reacher_registered_with_gymnasium_and_equal_to_the_simulator():
    assert register_reacher() == REACHER_ID == register_reacher()  # idempotent
    env = gymnasium.make(REACHER_ID, render_mode="rgb_array", image_size=32)
    assert env.spec is not None and env.spec.max_episode_steps == 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium's checker warns on API deviations: fail on any
        check_env(env.unwrapped)
    obs, info = env.reset(seed=3, options={"state": np.array([0.1, -0.2, 0, 0, 0, 0, 0]), "goal": np.zeros(7)})
    assert env.observation_space.contains(obs) and obs["observation"][:2].tolist() == pytest.approx([0.1, -0.2])
    sim = PointReacher(image_size=32)
    np.testing.assert_array_equal(env.render(), sim.render(obs["observation"]))
    obs, reward, terminated, truncated, info = env.step(np.array([1.0, -0.5, 0.0, 0.0], dtype=np.float32))
    np.testing.assert_allclose(obs["observation"][:2], [0.175, -0.2375], atol=1e-6)  # units of max_step 0.075 m
    assert reward == pytest.approx(-info["distance"]) and not terminated and not truncated
    assert info["distance"] == pytest.approx(np.hypot(0.175, 0.2375), abs=1e-6) and info["is_success"] == 0.0


def test_reacher_round_trip_gym_adapter_mpc_matches_the_simulator():
    """PointReacher → jepa/Reacher-v0 → GymPlanningEnv → run_mpc_episode gives the simulator's own episode."""
    wm = _world_model(32)
    config = CEMConfig(horizon=2, samples=8, topk=2, iterations=2, maxnorm=0.075, axis={2: 0.0, 3: 0.0})
    start = np.array([0.1, 0.1, 0, 0, 0, 0, 0], dtype=np.float32)
    goal = np.array([-0.05, 0.0, 0, 0, 0, 0, 0], dtype=np.float32)
    adapter = reacher_planning_env(image_size=32)
    via_gym = run_mpc_episode(adapter, wm, start, goal, config, steps=2, seed=0)
    direct = run_mpc_episode(PointReacher(image_size=32), wm, start, goal, config, steps=2, seed=0)
    assert len(via_gym.actions) == 2 and len(via_gym.frames) == 3
    np.testing.assert_allclose(np.stack(via_gym.actions), np.stack(direct.actions), atol=1e-6)
    np.testing.assert_allclose(np.stack(via_gym.states), np.stack(direct.states), atol=1e-6)
    np.testing.assert_allclose(via_gym.distances, direct.distances, atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(via_gym.frames, direct.frames, strict=True))
    assert np.abs(np.stack(via_gym.actions)[:, :2]).max() > 0  # it planned something
    baseline = run_random_episode(adapter, start, goal, steps=2, seed=0)
    assert adapter.max_step == pytest.approx(0.075) and len(baseline.distances) == 3


def test_action_map_scales_clips_and_places_axes():
    low, high = -np.ones(4), np.ones(4)
    action = np.array([0.01, -0.2, 0.03, 0.5, 0.5, 0.5, 0.4])
    np.testing.assert_allclose(FETCH_ACTION_MAP(action, low, high), [0.2, -1.0, 0.6, -0.4], atol=1e-6)
    swapped = ActionMap(size=3, xyz_index=(2, None, 0), xyz_scale=2.0, gripper_index=1, gripper_scale=3.0)
    np.testing.assert_allclose(swapped(action, -np.ones(3), np.ones(3)), [0.06, 1.0, 0.02], atol=1e-6)
    assert FETCH_ACTION_MAP.max_step(low, high) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="distinct"):
        ActionMap(size=2, xyz_index=(0, 1, 1))
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        FETCH_ACTION_MAP(np.zeros(4), low, high)


def test_generic_env_adapter_frames_states_servo_and_success():
    env = PointMass()
    adapter = GymPlanningEnv(
        env, action_map=POINT_MAP, set_state_fn=servo(POINT_MAP, dims=2, tolerance=1e-3), image_size=24, dims=2
    )
    frame = adapter.reset()
    assert frame.shape == (24, 24, 3) and frame.dtype == np.uint8  # 40×80 render centre-cropped + resized
    first = adapter.state
    assert first.shape == (7,) and np.array_equal(first[:2], env.pos) and not first[2:].any()
    np.testing.assert_array_equal(adapter.reset(), frame)  # every reset is reseeded: same scene
    adapter.step(np.array([0.05, -0.3, 0.2, 0, 0, 0, 1.0]))  # dx 0.05 m = 0.5 units; dy clipped to -1 unit
    np.testing.assert_allclose(adapter.state[:2], first[:2] + [0.05, -0.1], atol=1e-6)
    target = np.array([0.3, -0.25, 0, 0, 0, 0, 0], dtype=np.float32)
    goal_frame = adapter.render(target)  # servo: driven there with the env's own actions
    assert adapter.distance(adapter.state, target) < 1e-3 and not np.array_equal(goal_frame, frame)
    adapter.reset(np.zeros(7, dtype=np.float32))
    assert adapter.success is None  # the env's reset reports no success flag
    adapter.step(np.zeros(7))
    assert adapter.success is True and adapter.distance(adapter.state, np.zeros(7)) < 1e-3
    adapter.step(np.array([0.1, 0, 0, 0, 0, 0, 0]))
    assert adapter.success is False


def test_bad_envs_give_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        GymPlanningEnv(PointMass(render_mode=None))
    with pytest.raises(ValueError, match="ActionMap.size=4"):
        GymPlanningEnv(PointMass(), action_map=FETCH_ACTION_MAP)
    discrete = PointMass()
    discrete.action_space = spaces.Discrete(3)
    with pytest.raises(ValueError, match="1-D Box action space"):
        GymPlanningEnv(discrete)
    with pytest.raises(TypeError, match="gymnasium.Env"):
        GymPlanningEnv(PointReacher())

    class NoFrames(PointMass):
        def render(self):
            return [super().render()]  # e.g. an rgb_array_list env

    adapter = GymPlanningEnv(NoFrames(), action_map=POINT_MAP)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB array, got list"):
        adapter.reset()
    with pytest.raises(ValueError, match="set_state_fn"):
        GymPlanningEnv(PointMass(), action_map=POINT_MAP).reset(np.zeros(7))
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # gymnasium not installed
    with pytest.raises(ImportError, match=r"jepa-lightning\[gym\]"):
        require_gymnasium()


def test_state_functions():
    assert np.array_equal(vector_state(np.arange(7.0)), np.arange(7.0))
    np.testing.assert_array_equal(vector_state({"observation": np.array([1.0, 2.0])}), [1, 2, 0, 0, 0, 0, 0])
    reach = np.zeros(10)
    reach[:5] = [1.3, 0.7, 0.5, 0.05, 0.05]  # fingers fully open
    np.testing.assert_allclose(fetch_state({"observation": reach}), [1.3, 0.7, 0.5, 0, 0, 0, 0], atol=1e-6)
    push = np.zeros(25)
    push[9:11] = 0.0  # fingers closed
    assert fetch_state({"observation": push})[6] == 1.0
    with pytest.raises(ValueError, match="10-D or 25-D"):
        fetch_state({"observation": np.zeros(7)})


def test_fetch_reach_through_the_adapter_when_installed(monkeypatch):
    """Optional: gymnasium-robotics + mujoco (< 3.4 with gymnasium-robotics 1.4.2), rendered headless with EGL."""
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    pytest.importorskip("mujoco")
    pytest.importorskip("gymnasium_robotics")
    from jepa.planning.envs.gym import fetch_planning_env

    adapter = fetch_planning_env("FetchReach-v4", image_size=32, seed=0, width=64, height=64)
    frame = adapter.reset()
    start = adapter.state
    assert frame.shape == (32, 32, 3) and frame.std() > 5  # a real rendered scene
    target = start.copy()
    target[:3] += [0.05, -0.05, 0.03]
    goal_frame = adapter.render(target)  # servo with the arm's own actions
    assert adapter.distance(adapter.state, target) < 0.01 and not np.array_equal(goal_frame, frame)
    np.testing.assert_array_equal(adapter.reset(), frame)  # reseeded reset: the same scene again
    np.testing.assert_allclose(adapter.state, start, atol=1e-6)
    adapter.step(np.array([0.05, 0, 0, 0, 0, 0, 0]))  # one full Fetch action (5 cm mocap target) along +x
    assert 0.01 < adapter.state[0] - start[0] < 0.06 and adapter.success is not None
    adapter.close()
