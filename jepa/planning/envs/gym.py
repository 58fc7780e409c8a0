"""Gymnasium environments as planning environments, and the point reacher as a Gymnasium environment.

:class:`GymPlanningEnv` makes any ``gymnasium.Env`` created with ``render_mode="rgb_array"`` look like
:class:`~jepa.planning.envs.reacher.PointReacher` to the planning code (:func:`jepa.planning.mpc.run_mpc_episode`,
:func:`~jepa.planning.mpc.run_random_episode`):

* observations are the env's rendered RGB frames ``(H, W, 3)`` uint8 (optionally centre-cropped to a square and
  resized, as the official planning transform, spec ac_planning.md §6.1);
* ``state`` is a 7-D DROID-style state ``[x, y, z, α, β, γ, gripper]`` read from the env's observation by a
  ``state_fn``;
* actions are 7-D end-effector deltas ``[dx, dy, dz, dα, dβ, dγ, dg]`` (metres) mapped onto the env's ``Box`` action
  space by an :class:`ActionMap` (e.g. Fetch: ``[dx, dy, dz, gripper]`` in units of 5 cm, gripper sign flipped);
* ``reset(state)`` / ``render(state)`` put the env into a 7-D state through a ``set_state_fn`` (exact for the point
  reacher; for other envs :func:`servo` drives the end-effector there with the env's own actions). Every reset
  reseeds the env with the same ``seed``, so a goal image and the episode planned toward it share the scene.

:func:`register_reacher` registers the point reacher as ``jepa/Reacher-v0`` (goal-conditioned dict observations in
the Fetch convention, ``Box(-1, 1, (4,))`` actions) so it works with Gymnasium tooling; :func:`reacher_planning_env`
wraps it back into a planning environment. ``gymnasium`` is imported lazily (extra ``gym``); Fetch environments need
``gymnasium-robotics`` and ``mujoco`` (headless rendering with ``MUJOCO_GL=egl``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from jepa.planning.envs.reacher import STATE_DIM, PointReacher

REACHER_ID = "jepa/Reacher-v0"

StateFn = Callable[[Any], np.ndarray]
"""Env observation → ``(7,)`` float32 state ``[x, y, z, α, β, γ, gripper]``."""
SetStateFn = Callable[[Any, Any, np.ndarray], Any]
"""``(env, current observation, target (7,) state) → new observation``: put a freshly reset env into a state."""


def require_gymnasium() -> Any:
    """Import ``gymnasium`` or raise an ``ImportError`` that names the extra to install."""
    try:
        import gymnasium
    except ImportError as err:
        raise ImportError(
            "jepa.planning.envs.gym needs gymnasium: pip install 'jepa-lightning[gym]' (gymnasium>=1.0); "
            "Fetch environments also need gymnasium-robotics and mujoco"
        ) from err
    return gymnasium


# ---------------------------------------------------------------------------------------------- actions and states
@dataclass(frozen=True)
class ActionMap:
    """Linear map of a 7-D end-effector delta onto a ``Box`` action vector, clipped to the env's bounds.

    ``env_action[xyz_index[i]] = xyz_scale · d_i`` for the translation deltas ``d = (dx, dy, dz)`` in metres,
    ``env_action[gripper_index] = gripper_scale · dg``; rotation deltas are dropped (the planner never rotates).

    Attributes:
        size: length of the env's action vector.
        xyz_index: env action index of dx, dy, dz (None = the env has no such axis; the delta is dropped).
        xyz_scale: env action units per metre.
        gripper_index: env action index of the gripper command (None = no gripper).
        gripper_scale: env units per unit of ``dg`` (DROID convention: +1 closes).
    """

    size: int
    xyz_index: tuple[int | None, int | None, int | None] = (0, 1, 2)
    xyz_scale: float = 1.0
    gripper_index: int | None = None
    gripper_scale: float = 1.0

    def __post_init__(self) -> None:
        used = [i for i in (*self.xyz_index, self.gripper_index) if i is not None]
        if len(set(used)) != len(used) or any(not 0 <= i < self.size for i in used):
            raise ValueError(f"ActionMap: indices {used} must be distinct and in [0, {self.size})")
        if self.xyz_scale <= 0:
            raise ValueError(f"ActionMap: xyz_scale must be > 0, got {self.xyz_scale}")

    def __call__(self, action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """``(7,)`` end-effector delta → ``(size,)`` float32 env action clipped to ``[low, high]``."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (STATE_DIM,):
            raise ValueError(f"ActionMap: action must have shape (7,), got {action.shape}")
        out = np.zeros(self.size, dtype=np.float64)
        for axis, index in enumerate(self.xyz_index):
            if index is not None:
                out[index] = self.xyz_scale * action[axis]
        if self.gripper_index is not None:
            out[self.gripper_index] = self.gripper_scale * action[6]
        return np.clip(out, low, high).astype(np.float32)

    def max_step(self, low: np.ndarray, high: np.ndarray) -> float:
        """Largest per-axis translation (metres) that is not clipped on every mapped axis, in both directions."""
        bounds = [min(-low[i], high[i]) for i in self.xyz_index if i is not None]
        return float(min(bounds)) / self.xyz_scale if bounds else 0.0


def default_action_map(size: int) -> ActionMap:
    """Identity-scaled map: dx, dy, dz onto the first ``min(size, 3)`` entries, the gripper onto entry 3 if any."""
    xyz = tuple(i if i < size else None for i in range(3))
    return ActionMap(size=size, xyz_index=xyz, gripper_index=3 if size > 3 else None)  # type: ignore[arg-type]


def _vector(observation: Any) -> np.ndarray:
    """The observation vector: ``observation["observation"]`` for goal-conditioned dict observations."""
    if isinstance(observation, dict):
        if "observation" not in observation:
            raise ValueError(f"state_fn: dict observation without an 'observation' key (keys {sorted(observation)})")
        observation = observation["observation"]
    return np.asarray(observation, dtype=np.float32).reshape(-1)


def vector_state(observation: Any) -> np.ndarray:
    """Default ``state_fn``: a 7-entry observation vector is taken as the state; otherwise its first (up to) three
    entries are the end-effector xyz, with zero rotation and an open gripper."""
    vec = _vector(observation)
    if vec.shape[0] == STATE_DIM:
        return vec.copy()
    state = np.zeros(STATE_DIM, dtype=np.float32)
    state[: min(3, vec.shape[0])] = vec[:3]
    return state


FETCH_ACTION_MAP = ActionMap(size=4, xyz_scale=1 / 0.05, gripper_index=3, gripper_scale=-1.0)
"""Fetch (gymnasium-robotics): ``[dx, dy, dz, gripper]`` in ``[−1, 1]``, 1 = a 5 cm mocap target move; positive
gripper commands open the fingers, so DROID's ``dg`` (+1 closes) is negated."""


def fetch_state(observation: Any) -> np.ndarray:
    """Fetch observation → 7-D state: gripper xyz (``observation[:3]``) and gripper closure from the two finger
    positions (0 = open at 2 × 0.05 m, 1 = closed); the finger entries sit at ``[3:5]`` (Reach, 10-D observation) or
    ``[9:11]`` (Push / Slide / PickAndPlace, 25-D)."""
    vec = _vector(observation)
    fingers = {10: slice(3, 5), 25: slice(9, 11)}.get(vec.shape[0])
    if fingers is None:
        raise ValueError(f"fetch_state: expected a 10-D or 25-D Fetch observation vector, got {vec.shape[0]}-D")
    state = np.zeros(STATE_DIM, dtype=np.float32)
    state[:3] = vec[:3]
    state[6] = np.clip(1.0 - vec[fingers].sum() / 0.1, 0.0, 1.0)
    return state


def servo(
    action_map: ActionMap,
    state_fn: StateFn = vector_state,
    dims: int = 3,
    tolerance: float = 0.005,
    max_steps: int = 100,
) -> SetStateFn:
    """A ``set_state_fn`` for envs whose state cannot be written: drive the end-effector to the target with the env's
    own actions (proportional steps of the full remaining delta, clipped by the action map) until every simulated
    axis is within ``tolerance`` metres or ``max_steps`` actions were taken. The gripper is commanded toward the
    target's value, rotations are ignored."""

    def set_state(env: Any, observation: Any, target: np.ndarray) -> Any:
        low, high = env.action_space.low, env.action_space.high
        for _ in range(max_steps):
            current = state_fn(observation)
            delta = np.zeros(STATE_DIM, dtype=np.float32)
            delta[:dims] = np.asarray(target, dtype=np.float32)[:dims] - current[:dims]
            if np.abs(delta[:dims]).max() < tolerance:
                break
            delta[6] = float(target[6]) - current[6]
            observation = env.step(action_map(delta, low, high))[0]
        return observation

    return set_state


def _to_image(frame: Any, name: str, image_size: int | None) -> np.ndarray:
    """Check a rendered frame ``(H, W, 3|4)`` uint8; optional centre square crop + bilinear resize to ``image_size``."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4):
        got = type(frame).__name__ if not isinstance(frame, np.ndarray) else f"array {frame.shape}"
        raise ValueError(f"GymPlanningEnv({name}): render() must return an (H, W, 3) RGB array, got {got}")
    frame = frame[..., :3]
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0.0, 1.0) * 255).round().astype(np.uint8)  # float images in [0, 1]
    if image_size is None or frame.shape[:2] == (image_size, image_size):
        return np.ascontiguousarray(frame)
    height, width = frame.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = torch.from_numpy(np.ascontiguousarray(frame[top : top + side, left : left + side]))
    x = crop.permute(2, 0, 1)[None].float()  # (1, 3, side, side)
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()  # (S, S, 3)


# ---------------------------------------------------------------------------------------------- the adapter
class GymPlanningEnv:
    """A Gymnasium env behind the planning-environment interface of :class:`PointReacher`.

    Args:
        env: a ``gymnasium.Env`` (wrappers allowed) created with ``render_mode="rgb_array"`` and a 1-D ``Box``
            action space.
        action_map: 7-D delta → env action (default :func:`default_action_map`).
        state_fn: env observation → 7-D state (default :func:`vector_state`).
        set_state_fn: puts a freshly reset env into a 7-D state (needed by ``reset(state)`` / ``render(state)``).
        image_size: if set, frames are centre-cropped to a square and resized to this side.
        dims: simulated translation axes used by :meth:`distance` and random baselines (2 = x-y plane).
        seed: seed passed to every ``env.reset`` (the same scene for goal images and episodes).
        success_key: ``info`` key of the env's own success flag (``is_success`` in goal-conditioned envs).

    Attributes:
        env: the wrapped env; observation / info / reward / terminated / truncated: results of the last call.
        max_step: largest unclipped per-axis translation in metres (used by random baselines).
    """

    def __init__(
        self,
        env: Any,
        action_map: ActionMap | None = None,
        state_fn: StateFn = vector_state,
        set_state_fn: SetStateFn | None = None,
        image_size: int | None = None,
        dims: int = 3,
        seed: int | None = 0,
        success_key: str = "is_success",
    ) -> None:
        gym = require_gymnasium()
        name = env.spec.id if getattr(env, "spec", None) is not None else type(env).__name__
        self.name = name
        if not isinstance(env, gym.Env):
            raise TypeError(f"GymPlanningEnv({name}): expected a gymnasium.Env, got {type(env).__name__}")
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"GymPlanningEnv({name}): render_mode is {env.render_mode!r}; planning needs image observations, "
                f"create it with gymnasium.make(..., render_mode='rgb_array')"
            )
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"GymPlanningEnv({name}): needs a 1-D Box action space, got {space}")
        self.action_map = action_map if action_map is not None else default_action_map(space.shape[0])
        if self.action_map.size != space.shape[0]:
            raise ValueError(
                f"GymPlanningEnv({name}): ActionMap.size={self.action_map.size} but the action space is {space}"
            )
        if dims not in (1, 2, 3):
            raise ValueError(f"GymPlanningEnv({name}): dims must be 1, 2 or 3, got {dims}")
        self.env, self.state_fn, self.set_state_fn = env, state_fn, set_state_fn
        self.image_size, self.dims, self.seed, self.success_key = image_size, dims, seed, success_key
        self.low = np.asarray(space.low, dtype=np.float64)
        self.high = np.asarray(space.high, dtype=np.float64)
        self.max_step = self.action_map.max_step(self.low, self.high)
        self.observation: Any = None
        self.info: dict[str, Any] = {}
        self.reward, self.terminated, self.truncated = 0.0, False, False

    # ------------------------------------------------------------------ planning-environment interface
    @property
    def state(self) -> np.ndarray:
        """``(7,)`` float32 state of the last observation (call :meth:`reset` first)."""
        if self.observation is None:
            raise RuntimeError(f"GymPlanningEnv({self.name}): call reset() before reading the state")
        state = np.asarray(self.state_fn(self.observation), dtype=np.float32)
        if state.shape != (STATE_DIM,):
            raise ValueError(f"GymPlanningEnv({self.name}): state_fn must return shape (7,), got {state.shape}")
        return state

    def reset(self, state: np.ndarray | None = None) -> np.ndarray:
        """Reset (reseeded with ``seed``), then move to ``state`` if given; returns the frame ``(H, W, 3)`` uint8."""
        self.observation, self.info = self.env.reset(seed=self.seed)
        self.reward, self.terminated, self.truncated = 0.0, False, False
        if state is not None:
            if self.set_state_fn is None:
                raise ValueError(
                    f"GymPlanningEnv({self.name}): cannot put the env into a given state without a set_state_fn "
                    f"(e.g. servo(action_map)); call reset() without a state to start from the env's own reset"
                )
            self.observation = self.set_state_fn(self.env, self.observation, np.asarray(state, dtype=np.float32))
        return self.frame()

    def step(self, action: np.ndarray) -> np.ndarray:
        """Apply a 7-D end-effector delta; returns the new frame ``(H, W, 3)`` uint8."""
        env_action = self.action_map(action, self.low, self.high)
        self.observation, reward, self.terminated, self.truncated, self.info = self.env.step(env_action)
        self.reward = float(reward)
        return self.frame()

    def render(self, state: np.ndarray | None = None) -> np.ndarray:
        """The frame of ``state`` (resets the env and moves it there, e.g. for a goal image) or of the current env."""
        if state is not None:
            return self.reset(state)
        return self.frame()

    def frame(self) -> np.ndarray:
        """Render the current env: ``(H, W, 3)`` uint8 (``image_size`` square if set)."""
        return _to_image(self.env.render(), self.name, self.image_size)

    def distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        """Euclidean end-effector distance (metres) over the first ``dims`` axes."""
        return float(np.linalg.norm(np.asarray(state)[: self.dims] - np.asarray(goal)[: self.dims]))

    @property
    def success(self) -> bool | None:
        """The env's own success flag from the last ``info`` (None if it reports none)."""
        value = self.info.get(self.success_key)
        return None if value is None else bool(value)

    def close(self) -> None:
        self.env.close()


# ---------------------------------------------------------------------------------------------- jepa/Reacher-v0
def reacher_set_state(env: Any, observation: Any, state: np.ndarray) -> Any:
    """``set_state_fn`` of ``jepa/Reacher-v0``: writes the state exactly."""
    return env.unwrapped.set_state(state)


def reacher_action_map(max_step: float = 0.075) -> ActionMap:
    """``jepa/Reacher-v0`` actions: ``[dx, dy, dz, dg]`` in ``[−1, 1]``, xyz in units of ``max_step`` metres."""
    return ActionMap(size=4, xyz_scale=1.0 / max_step, gripper_index=3, gripper_scale=1.0)


_REACHER_CLASS: type | None = None


def reacher_env_class() -> type:
    """The ``gymnasium.Env`` subclass around :class:`PointReacher` (built on first use; gymnasium is optional)."""
    global _REACHER_CLASS
    if _REACHER_CLASS is not None:
        return _REACHER_CLASS
    gym = require_gymnasium()
    spaces = gym.spaces

    class ReacherEnv(gym.Env):
        """The point reacher as a goal-conditioned Gymnasium env (Fetch conventions).

        Observations: ``{"observation": (7,) state, "achieved_goal": (3,) xyz, "desired_goal": (3,) xyz}``.
        Actions: ``Box(−1, 1, (4,))`` = ``[dx, dy, dz, dg]``, xyz in units of ``max_step`` metres, ``dg`` added to the
        gripper. Reward: ``−distance``; ``info["is_success"]``: distance < ``success_threshold``. ``reset`` options:
        ``state`` / ``goal`` (7-D) to fix the start / goal (random otherwise). Never terminates (use a time limit).
        """

        metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

        def __init__(
            self,
            render_mode: str | None = None,
            image_size: int = 64,
            dims: int = 2,
            max_step: float = 0.075,
            success_threshold: float = 0.05,
        ) -> None:
            if render_mode not in (None, "rgb_array"):
                raise ValueError(f"{REACHER_ID}: render_mode must be None or 'rgb_array', got {render_mode!r}")
            self.render_mode = render_mode
            self.sim = PointReacher(image_size=image_size, dims=dims, max_step=max_step)
            self.success_threshold = success_threshold
            self.goal = np.zeros(STATE_DIM, dtype=np.float32)
            low, high = np.asarray(self.sim.low, np.float32), np.asarray(self.sim.high, np.float32)
            state_low = np.concatenate([low, np.full(3, -np.pi, np.float32), [0.0]]).astype(np.float32)
            state_high = np.concatenate([high, np.full(3, np.pi, np.float32), [1.0]]).astype(np.float32)
            self.observation_space = spaces.Dict(
                {
                    "observation": spaces.Box(state_low, state_high, dtype=np.float32),
                    "achieved_goal": spaces.Box(low, high, dtype=np.float32),
                    "desired_goal": spaces.Box(low, high, dtype=np.float32),
                }  # fmt: skip
            )
            self.action_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)

        def _obs(self) -> dict[str, np.ndarray]:
            state = self.sim.state.astype(np.float32)  # (7,)
            return {"observation": state, "achieved_goal": state[:3].copy(), "desired_goal": self.goal[:3].copy()}

        def _info(self) -> dict[str, Any]:
            distance = self.sim.distance(self.sim.state, self.goal)
            return {"distance": distance, "is_success": float(distance < self.success_threshold)}

        def reset(
            self, *, seed: int | None = None, options: dict[str, Any] | None = None
        ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
            super().reset(seed=seed)
            options = options or {}
            start = options.get("state")
            goal = options.get("goal")
            self.sim.reset(self.sim.sample_state(self.np_random) if start is None else np.asarray(start, np.float32))
            self.goal = self.sim.clip_state(self.sim.sample_state(self.np_random) if goal is None else goal)
            return self._obs(), self._info()

        def set_state(self, state: np.ndarray) -> dict[str, np.ndarray]:
            """Write the 7-D state (clipped to the workspace); returns the observation."""
            self.sim.reset(np.asarray(state, dtype=np.float32))
            return self._obs()

        def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
            action = np.asarray(action, dtype=np.float32)
            if action.shape != (4,):
                raise ValueError(f"{REACHER_ID}: action must have shape (4,), got {action.shape}")
            action = np.clip(action, -1.0, 1.0)
            delta = np.zeros(STATE_DIM, dtype=np.float32)
            delta[:3] = action[:3] * self.sim.max_step
            delta[6] = action[3]
            self.sim.step(delta)
            info = self._info()
            return self._obs(), -info["distance"], False, False, info

        def render(self) -> np.ndarray | None:
            return self.sim.render(self.sim.state) if self.render_mode == "rgb_array" else None

        def render_goal(self) -> np.ndarray:
            """Frame of the goal state (the goal image)."""
            return self.sim.render(self.goal)

    _REACHER_CLASS = ReacherEnv
    return ReacherEnv


def _make_reacher(**kwargs: Any) -> Any:
    return reacher_env_class()(**kwargs)


def register_reacher(max_episode_steps: int = 50) -> str:
    """Register the point reacher as ``jepa/Reacher-v0`` (idempotent); returns the id for ``gymnasium.make``."""
    gym = require_gymnasium()
    if REACHER_ID not in gym.registry:
        gym.register(REACHER_ID, entry_point=_make_reacher, max_episode_steps=max_episode_steps)
    return REACHER_ID


def reacher_planning_env(image_size: int = 64, dims: int = 2, max_step: float = 0.075, seed: int = 0) -> GymPlanningEnv:
    """``gymnasium.make("jepa/Reacher-v0", render_mode="rgb_array")`` behind :class:`GymPlanningEnv` (exact states)."""
    gym = require_gymnasium()
    env = gym.make(register_reacher(), render_mode="rgb_array", image_size=image_size, dims=dims, max_step=max_step)
    return GymPlanningEnv(
        env, action_map=reacher_action_map(max_step), set_state_fn=reacher_set_state, dims=dims, seed=seed
    )


# ---------------------------------------------------------------------------------------------- Fetch
def fetch_planning_env(
    env_id: str = "FetchReach-v4", image_size: int | None = 256, seed: int = 0, **make_kwargs: Any
) -> GymPlanningEnv:
    """A gymnasium-robotics Fetch env (Reach / Push / Slide / PickAndPlace) as a planning environment.

    Uses :data:`FETCH_ACTION_MAP`, :func:`fetch_state` and :func:`servo` (states are reached with the arm's own
    actions). Needs ``gymnasium-robotics`` and ``mujoco`` (checked here with gymnasium-robotics 1.4.2 + mujoco
    3.3.7; mujoco 4.0 breaks the Fetch reset) and, headless, ``MUJOCO_GL=egl`` set before the first import.
    """
    gym = require_gymnasium()
    try:
        import gymnasium_robotics
    except ImportError as err:
        raise ImportError(
            f"fetch_planning_env({env_id}): needs gymnasium-robotics and mujoco: pip install gymnasium-robotics "
            "'mujoco<3.4' (and MUJOCO_GL=egl for headless rendering)"
        ) from err
    gym.register_envs(gymnasium_robotics)
    env = gym.make(env_id, render_mode="rgb_array", **make_kwargs)
    return GymPlanningEnv(
        env,
        action_map=FETCH_ACTION_MAP,
        state_fn=fetch_state,
        set_state_fn=servo(FETCH_ACTION_MAP, fetch_state),
        image_size=image_size,
        dims=3,
        seed=seed,
    )
