"""Deterministic synthetic video datasets: classes defined by motion only, or by static appearance only.

Two families, both real H.264 mp4 files written with `jepa.data.encode`:

- motion datasets: one object on a static textured background; the class is how it moves. One frame carries no
  class information: appearance (shape, colours, texture, size) is random per video, and positions live on a torus
  (an object leaving on one side re-enters on the other) so the first-frame position is uniform for every class.
  Kinds: ``motion`` (left / right / up / down translation, cw / ccw rotation), ``speed`` (slow / fast translation
  in a random direction), ``occlusion`` (object passing in front of / behind a static bar).
- ``swarm``: several light squares on a dark background, all translating the same way (left / right / up / down) on
  the torus. The appearance is the same in every video; only the squares' positions and sizes, the speed and the
  direction vary, so the motion is predictable from any visible part of the clip (see `render_swarm_clip`).
  ``swarm_speed``: the same videos, classed by speed (slow: 1–1.25, fast: 1.75–2 px/frame), direction random.
- ``static``: class = shape × colour of the object; the object only jitters by ±1 px at random (no informative
  motion).

The renderer is a library function so later datasets (action sequences for anticipation, "which way does it move?"
video QA) reuse it: `render_motion_clip(spec, rng)` for one motion, `render_motion_sequence(specs, rng)` for a
sequence of motions whose state (position, angle) carries over from one to the next.

Image coordinates: x to the right, y DOWN. "up" decreases y. "cw" is clockwise as seen on screen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from jepa.data.encode import encode_video

__all__ = [
    "KIND_CLASSES",
    "MOTIONS",
    "Appearance",
    "MotionSpec",
    "SWARM_SPEEDS",
    "SynthResult",
    "generate_synthetic_dataset",
    "render_motion_clip",
    "render_motion_sequence",
    "render_static_clip",
    "render_swarm_clip",
    "sample_appearance",
]

# motion name -> (dx, dy, dtheta) unit direction; speed scales it.
MOTIONS: dict[str, tuple[float, float, float]] = {
    "left": (-1.0, 0.0, 0.0),
    "right": (1.0, 0.0, 0.0),
    "up": (0.0, -1.0, 0.0),
    "down": (0.0, 1.0, 0.0),
    "cw": (0.0, 0.0, 1.0),  # y points down, so increasing angle is clockwise on screen
    "ccw": (0.0, 0.0, -1.0),
    "still": (0.0, 0.0, 0.0),
    # the following pick a random direction / sign at render time
    "slow": (1.0, 0.0, 0.0),
    "fast": (1.0, 0.0, 0.0),
    "front": (1.0, 0.0, 0.0),
    "behind": (1.0, 0.0, 0.0),
}
SHAPES = ("square", "circle", "triangle", "diamond")
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (40, 80, 230),
    "yellow": (230, 210, 40),
}
KIND_CLASSES: dict[str, tuple[str, ...]] = {
    "motion": ("left", "right", "up", "down", "cw", "ccw"),
    "speed": ("slow", "fast"),
    "occlusion": ("front", "behind"),
    "static": tuple(f"{c}_{s}" for s in ("square", "circle", "triangle") for c in ("red", "green", "blue")),
    "swarm": ("left", "right", "up", "down"),
    "swarm_speed": ("slow", "fast"),
}
# swarm_speed classes: the common speed in pixels / frame (within the `swarm` range 1–2, with a gap between them)
SWARM_SPEEDS = {"slow": (1.0, 1.25), "fast": (1.75, 2.0)}
# default speed ranges: pixels / frame for translation, degrees / frame for rotation
_SPEED_RANGE = {"translate": (0.6, 1.4), "rotate": (6.0, 12.0), "slow": (0.25, 0.5), "fast": (1.6, 2.4)}


@dataclass
class Appearance:
    """Everything about a video that is NOT its motion (sampled per video by `sample_appearance`)."""

    shape: str
    color: np.ndarray  # (3,) uint8 object colour
    marker_color: np.ndarray  # (3,) uint8 colour of the off-centre marker that makes rotation visible
    background: np.ndarray  # (H, W, 3) float32 static background
    radius: float  # object half size in pixels
    occluder_x: float  # centre column of the occluder bar (occlusion kind)
    occluder_width: float
    occluder_color: np.ndarray  # (3,) uint8


@dataclass
class MotionSpec:
    """One motion segment: `motion` (a key of `MOTIONS`), its length in frames, an optional speed.

    speed: pixels / frame for translations, degrees / frame for rotations; None draws it from the default range.
    """

    motion: str
    frames: int = 32
    speed: float | None = None

    def __post_init__(self) -> None:
        if self.motion not in MOTIONS:
            raise ValueError(f"MotionSpec.motion: unknown motion {self.motion!r}, expected one of {sorted(MOTIONS)}")
        if self.frames < 1:
            raise ValueError(f"MotionSpec.frames: expected >= 1, got {self.frames}")


@dataclass
class _State:
    x: float
    y: float
    theta: float  # radians
    extra: dict = field(default_factory=dict)


def _random_color(rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
    for _ in range(100):
        c = rng.integers(0, 256, size=3)
        if avoid is None or np.abs(c - avoid).sum() > 200:
            return c.astype(np.uint8)
    return (255 - avoid).astype(np.uint8) if avoid is not None else c.astype(np.uint8)


def sample_appearance(rng: np.random.Generator, size: int = 64, shape: str | None = None) -> Appearance:
    """Draw a random appearance for a `size` × `size` video: background texture, object shape/colour/size."""
    bg_color = rng.integers(30, 226, size=3).astype(np.float32)
    # low-frequency static texture: a coarse random grid upsampled by pixel repetition, +-25 levels
    cells = max(2, size // 16)
    coarse = rng.uniform(-25, 25, size=(cells, cells, 3)).astype(np.float32)
    rep = -(-size // cells)
    texture = np.repeat(np.repeat(coarse, rep, axis=0), rep, axis=1)[:size, :size]
    background = np.clip(bg_color + texture, 0, 255)
    color = _random_color(rng, avoid=bg_color)
    return Appearance(
        shape=shape if shape is not None else SHAPES[int(rng.integers(len(SHAPES)))],
        color=color,
        marker_color=_random_color(rng, avoid=color.astype(np.float32)),
        background=background,
        radius=float(rng.uniform(0.11, 0.16) * size),
        occluder_x=float(rng.uniform(0.3, 0.7) * size),
        occluder_width=float(rng.uniform(0.12, 0.2) * size),
        occluder_color=_random_color(rng, avoid=bg_color),
    )


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    if shape == "square":
        return (np.abs(u) <= r) & (np.abs(v) <= r)
    if shape == "circle":
        return u * u + v * v <= r * r
    if shape == "triangle":  # apex towards -v
        return (v >= -r) & (v <= r) & (np.abs(u) <= (v + r) / 2)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= r
    raise ValueError(f"unknown shape {shape!r}, expected one of {SHAPES}")


def _render(app: Appearance, xs: np.ndarray, ys: np.ndarray, thetas: np.ndarray, occlusion: str | None) -> np.ndarray:
    """Render T frames with object centres (xs, ys) and angles `thetas` (each (T,)) → (T, H, W, 3) uint8."""
    size = app.background.shape[0]
    t = len(xs)
    grid = np.arange(size, dtype=np.float32) + 0.5
    gx = grid[None, None, :]  # (1, 1, W)
    gy = grid[None, :, None]  # (1, H, 1)
    # toroidal offsets from the centre, in [-size/2, size/2)
    dx = (gx - xs[:, None, None] + size / 2) % size - size / 2  # (T, 1, W)
    dy = (gy - ys[:, None, None] + size / 2) % size - size / 2  # (T, H, 1)
    c, s = np.cos(thetas)[:, None, None], np.sin(thetas)[:, None, None]
    u = c * dx + s * dy  # object frame, (T, H, W)
    v = -s * dx + c * dy
    body = _shape_mask(app.shape, u, v, app.radius)
    marker = body & ((u - 0.5 * app.radius) ** 2 + v**2 <= (0.3 * app.radius) ** 2)
    frames = np.broadcast_to(app.background, (t, size, size, 3)).copy()  # (T, H, W, 3)
    bar = None
    if occlusion is not None:
        bar = np.abs(grid - app.occluder_x) <= app.occluder_width / 2  # (W,)
        bar = np.broadcast_to(bar[None, None, :], body.shape)
    if occlusion == "front":
        frames[bar] = app.occluder_color
    frames[body] = app.color
    frames[marker] = app.marker_color
    if occlusion == "behind":
        frames[bar] = app.occluder_color
    return frames.astype(np.uint8)


def _segment_velocity(spec: MotionSpec, rng: np.random.Generator) -> tuple[float, float, float, str | None]:
    """(dx, dy, dtheta) per frame (pixels, pixels, radians) and the occlusion mode of one segment."""
    m = spec.motion
    ux, uy, ut = MOTIONS[m]
    occlusion = m if m in ("front", "behind") else None
    if m in ("slow", "fast"):
        ux, uy = [(1, 0), (-1, 0), (0, 1), (0, -1)][int(rng.integers(4))]
    if occlusion is not None:
        ux = float(rng.choice([-1.0, 1.0]))
    if ut != 0:
        lo, hi = _SPEED_RANGE["rotate"]
        speed = spec.speed if spec.speed is not None else float(rng.uniform(lo, hi))
        return 0.0, 0.0, ut * np.deg2rad(speed), None
    lo, hi = _SPEED_RANGE[m] if m in ("slow", "fast") else _SPEED_RANGE["translate"]
    speed = spec.speed if spec.speed is not None else float(rng.uniform(lo, hi))
    return ux * speed, uy * speed, 0.0, occlusion


def render_motion_sequence(
    specs: Sequence[MotionSpec],
    rng: np.random.Generator,
    size: int = 64,
    appearance: Appearance | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Render consecutive motion segments of one object; position and angle carry over between segments.

    Args:
        specs: the motion segments, in order.
        rng: the only randomness (appearance if not given, start state, speeds left as None, random directions).
        size: frame height = width in pixels.
        appearance: a fixed appearance (else drawn with `sample_appearance`).

    Returns:
        frames `(sum(spec.frames), size, size, 3)` uint8 RGB, and the start frame of each segment.
    """
    app = appearance if appearance is not None else sample_appearance(rng, size)
    state = _State(x=float(rng.uniform(0, size)), y=float(rng.uniform(0, size)), theta=float(rng.uniform(0, 2 * np.pi)))
    chunks, starts, start = [], [], 0
    for spec in specs:
        vx, vy, vt, occlusion = _segment_velocity(spec, rng)
        k = np.arange(spec.frames, dtype=np.float32)
        xs, ys, ts = state.x + vx * k, state.y + vy * k, state.theta + vt * k  # (T,) each
        chunks.append(_render(app, xs, ys, ts, occlusion))
        starts.append(start)
        start += spec.frames
        state = _State(x=state.x + vx * spec.frames, y=state.y + vy * spec.frames, theta=state.theta + vt * spec.frames)
    return np.concatenate(chunks, axis=0), starts


def render_motion_clip(
    spec: MotionSpec, rng: np.random.Generator, size: int = 64, appearance: Appearance | None = None
) -> np.ndarray:
    """Render one motion clip `(spec.frames, size, size, 3)` uint8 RGB; deterministic given `rng`'s state."""
    frames, _ = render_motion_sequence([spec], rng, size=size, appearance=appearance)
    return frames


def render_swarm_clip(
    direction: str,
    rng: np.random.Generator,
    frames: int = 32,
    size: int = 64,
    count: int = 8,
    half_size: tuple[float, float] = (0.05, 0.08),
    speed: tuple[float, float] = (1.0, 2.0),
    background: int = 40,
    foreground: int = 220,
) -> np.ndarray:
    """Render a `swarm` video: `count` squares all translating in `direction` on the torus, `(frames, size, size, 3)`.

    Args:
        direction: ``left``, ``right``, ``up`` or ``down``.
        rng: the only randomness: the speed (one per video), then each square's position and half size.
        frames, size: video length and frame height = width in pixels.
        count: number of squares; `half_size`: range of a square's half side as a fraction of `size`.
        speed: range of the common speed in pixels per frame.
        background, foreground: grey levels of the background and of every square (the same in every video).
    """
    if direction not in KIND_CLASSES["swarm"]:
        raise ValueError(f"swarm direction {direction!r}: expected one of {KIND_CLASSES['swarm']}")
    ux, uy, _ = MOTIONS[direction]
    step = float(rng.uniform(*speed))
    centres = rng.uniform(0, size, size=(count, 2))  # (count, 2): x, y at frame 0
    halves = rng.uniform(*half_size, size=count) * size  # (count,)
    grid = np.arange(size, dtype=np.float32) + 0.5
    k = np.arange(frames, dtype=np.float32)
    video = np.full((frames, size, size, 3), background, dtype=np.uint8)
    for (x0, y0), half in zip(centres, halves, strict=True):
        xs, ys = x0 + ux * step * k, y0 + uy * step * k  # (T,) each
        dx = (grid[None, None, :] - xs[:, None, None] + size / 2) % size - size / 2  # (T, 1, W) toroidal offsets
        dy = (grid[None, :, None] - ys[:, None, None] + size / 2) % size - size / 2  # (T, H, 1)
        video[(np.abs(dx) <= half) & (np.abs(dy) <= half)] = foreground  # (T, H, W) mask
    return video


def render_static_clip(class_name: str, rng: np.random.Generator, frames: int = 32, size: int = 64) -> np.ndarray:
    """Render a `static` class video (`"<colour>_<shape>"`, e.g. `"red_square"`): `(frames, size, size, 3)` uint8.

    The object has a fixed random angle and position; it jitters by a random ±1 px walk (non-informative).
    """
    color_name, _, shape = class_name.partition("_")
    if color_name not in PALETTE or shape not in SHAPES:
        raise ValueError(
            f"static class {class_name!r}: expected '<colour>_<shape>' with colour in "
            f"{sorted(PALETTE)} and shape in {SHAPES}"
        )
    app = sample_appearance(rng, size, shape=shape)
    app.color = (np.array(PALETTE[color_name]) + rng.integers(-15, 16, size=3)).clip(0, 255).astype(np.uint8)
    app.marker_color = app.color
    app.background = np.clip(app.background * 0.5 + 64, 0, 255)  # muted background, never the class colour
    x0, y0, th = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, 2 * np.pi)
    walk = np.cumsum(rng.integers(-1, 2, size=(frames, 2)), axis=0).clip(-2, 2).astype(np.float32)
    return _render(app, x0 + walk[:, 0], y0 + walk[:, 1], np.full(frames, th, np.float32), None)


@dataclass
class SynthResult:
    """Paths written by `generate_synthetic_dataset`."""

    root: str
    csvs: dict[str, str]  # split -> CSV path
    class_map: str  # JSON path: class name -> label
    shards: dict[str, str] = field(default_factory=dict)  # split -> brace pattern of shard files


def generate_synthetic_dataset(
    output_dir: str | os.PathLike,
    kind: str = "motion",
    videos_per_class: int = 8,
    val_videos_per_class: int = 2,
    frames: int = 32,
    size: int = 64,
    fps: int = 8,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    absolute_paths: bool = False,
) -> SynthResult:
    """Write a synthetic classification dataset: mp4 files, `train.csv` / `val.csv` and `classes.json`.

    Layout: `output_dir/{split}/{class}/{class}_{i:05d}.mp4`; CSVs in the official format (`path label`, one
    space, no header); paths relative to `output_dir` unless `absolute_paths` (jepa's CSV reader resolves relative
    paths against the CSV's folder). Every video is drawn from its own generator seeded by
    `(seed, split, class index, i)`, so the output is a deterministic function of the arguments (same bytes).
    """
    if kind not in KIND_CLASSES:
        raise ValueError(f"kind: expected one of {sorted(KIND_CLASSES)}, got {kind!r}")
    names = tuple(classes) if classes is not None else KIND_CLASSES[kind]
    root = os.path.abspath(os.fspath(output_dir))
    os.makedirs(root, exist_ok=True)
    class_map = {name: i for i, name in enumerate(names)}
    csvs: dict[str, str] = {}
    for split_id, (split, count) in enumerate((("train", videos_per_class), ("val", val_videos_per_class))):
        if count <= 0:
            continue
        lines = []
        for label, name in enumerate(names):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng([seed, split_id, label, i])
                if kind == "static":
                    video = render_static_clip(name, rng, frames=frames, size=size)
                elif kind == "swarm":
                    video = render_swarm_clip(name, rng, frames=frames, size=size)
                elif kind == "swarm_speed":
                    direction = KIND_CLASSES["swarm"][int(rng.integers(4))]
                    video = render_swarm_clip(direction, rng, frames=frames, size=size, speed=SWARM_SPEEDS[name])
                else:
                    video = render_motion_clip(MotionSpec(name, frames=frames), rng, size=size)
                path = os.path.join(folder, f"{name}_{i:05d}.mp4")
                encode_video(path, video, fps=fps)
                lines.append(f"{path if absolute_paths else os.path.relpath(path, root)} {label}")
        csvs[split] = os.path.join(root, f"{split}.csv")
        with open(csvs[split], "w") as f:
            f.write("\n".join(lines) + "\n")
    class_map_path = os.path.join(root, "classes.json")
    with open(class_map_path, "w") as f:
        json.dump(class_map, f, indent=1)
    return SynthResult(root=root, csvs=csvs, class_map=class_map_path)
