"""A deterministic, headless, numpy-rendered point end-effector ("reacher") for testing planning.

The end-effector lives in a box workspace (metres). Its 7-D state follows the DROID convention
``[x, y, z, α, β, γ, gripper]``; rotations are not simulated (always 0). Actions are 7-D end-effector deltas
``[dx, dy, dz, dα, dβ, dγ, dg]``: each xyz delta is clipped to ``± max_step``, rotation deltas are ignored, the
gripper is clipped to ``[0, 1]``. With ``dims=2`` the end-effector moves in the x-y plane only (``z`` stays at the
workspace floor and ``dz`` is ignored).

Observations are top-down RGB images: a fixed background with a soft coloured blob at ``(x, y)`` whose radius grows
with ``z`` and whose colour goes from blue (gripper open, 0) to red (closed, 1), plus a sharp dark centre dot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STATE_DIM = 7


@dataclass
class PointReacher:
    """The simulator.

    Attributes:
        image_size: observation side in pixels.
        low / high: workspace corners ``(x, y, z)`` in metres.
        max_step: per-coordinate clip of one action (0.075 = the paper's action box).
        dims: 2 (x, y) or 3 (x, y, z).
        blob_sigma: blob width in metres (large blobs keep images of nearby states overlapping).
    """

    image_size: int = 64
    low: tuple[float, float, float] = (-0.3, -0.3, 0.0)
    high: tuple[float, float, float] = (0.3, 0.3, 0.2)
    max_step: float = 0.075
    dims: int = 2
    blob_sigma: float = 0.1
    state: np.ndarray = field(default_factory=lambda: np.zeros(STATE_DIM, dtype=np.float32))

    def __post_init__(self) -> None:
        if self.dims not in (2, 3):
            raise ValueError(f"PointReacher: dims must be 2 or 3, got {self.dims}")
        n = self.image_size
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        # pixel centres in workspace coordinates; row 0 = high y (image "up" = +y)
        self._xs = lo[0] + (np.arange(n) + 0.5) / n * (hi[0] - lo[0])
        self._ys = hi[1] - (np.arange(n) + 0.5) / n * (hi[1] - lo[1])
        u = np.linspace(0.0, 1.0, n, dtype=np.float32)
        self._background = np.stack(  # a static, slightly textured floor
            [0.55 + 0.15 * u[None, :].repeat(n, 0), 0.6 + 0.1 * u[:, None].repeat(n, 1), np.full((n, n), 0.5)], -1
        ).astype(np.float32)

    # ------------------------------------------------------------------ states
    def clip_state(self, state: np.ndarray) -> np.ndarray:
        """Project a 7-D state into the workspace (rotation zeroed, gripper in [0, 1], z at the floor in 2-D)."""
        out = np.asarray(state, dtype=np.float32).copy()
        out[:3] = np.clip(out[:3], self.low, self.high)
        if self.dims == 2:
            out[2] = self.low[2]
        out[3:6] = 0.0
        out[6] = np.clip(out[6], 0.0, 1.0)
        return out

    def sample_state(self, rng: np.random.Generator, margin: float = 0.05) -> np.ndarray:
        """A uniformly random state ``margin`` away from the walls, gripper open."""
        lo, hi = np.asarray(self.low) + margin, np.asarray(self.high) - margin
        state = np.zeros(STATE_DIM, dtype=np.float32)
        state[:3] = rng.uniform(lo, hi)
        return self.clip_state(state)

    def reset(self, state: np.ndarray) -> np.ndarray:
        """Set the state; returns the observation ``(H, W, 3)`` uint8."""
        self.state = self.clip_state(state)
        return self.render(self.state)

    def step(self, action: np.ndarray) -> np.ndarray:
        """Apply a 7-D action; returns the new observation ``(H, W, 3)`` uint8."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (STATE_DIM,):
            raise ValueError(f"PointReacher.step: action must have shape (7,), got {action.shape}")
        new = self.state.copy()
        new[:3] += np.clip(action[:3], -self.max_step, self.max_step)
        new[6] += action[6]
        self.state = self.clip_state(new)
        return self.render(self.state)

    def distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        """Euclidean end-effector distance (metres) over the simulated axes."""
        return float(np.linalg.norm(np.asarray(state)[: self.dims] - np.asarray(goal)[: self.dims]))

    # ------------------------------------------------------------------ rendering
    def render(self, state: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 image of a 7-D state."""
        x, y, z, gripper = float(state[0]), float(state[1]), float(state[2]), float(state[6])
        span_z = max(self.high[2] - self.low[2], 1e-6)
        sigma = self.blob_sigma * (1.0 + 0.5 * (z - self.low[2]) / span_z)
        d2 = (self._xs[None, :] - x) ** 2 + (self._ys[:, None] - y) ** 2  # (H, W)
        alpha = np.exp(-d2 / (2 * sigma**2))[..., None].astype(np.float32)
        colour = np.array([0.15 + 0.8 * gripper, 0.2, 0.95 - 0.8 * gripper], dtype=np.float32)
        image = self._background * (1 - alpha) + colour * alpha
        dot = (d2 < (0.02 * (1.0 + 0.5 * (z - self.low[2]) / span_z)) ** 2)[..., None]
        image = np.where(dot, 0.05, image)
        return (image * 255).round().clip(0, 255).astype(np.uint8)


def random_trajectory(
    env: PointReacher, length: int, rng: np.random.Generator, gripper_flip_prob: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Roll random actions (uniform in the action box, occasional gripper flips) from a random start.

    Returns:
        ``(frames (T, H, W, 3) uint8, states (T, 7) float32)``.
    """
    obs = env.reset(env.sample_state(rng, margin=0.0))
    frames, states = [obs], [env.state.copy()]
    for _ in range(length - 1):
        action = np.zeros(STATE_DIM, dtype=np.float32)
        action[: env.dims] = rng.uniform(-env.max_step, env.max_step, size=env.dims)
        if rng.random() < gripper_flip_prob:
            action[6] = 1.0 - 2.0 * env.state[6]  # open ↔ closed
        frames.append(env.step(action))
        states.append(env.state.copy())
    return np.stack(frames), np.stack(states).astype(np.float32)
