"""Typed-function commands behind ``jepa plan …`` (docstrings are the ``--help``).

* :func:`collect` — random-action trajectories of the simulator, in the generic trajectory format.
* :func:`plan` — CEM-MPC episodes on the simulator from goal images vs a random-action baseline; writes GIFs,
  energy traces (JSON + CSV) and a summary.
* :func:`landscape` — energy over a grid of actions around a ground-truth action, as PNG + JSON.

The world model is rebuilt from a Lightning checkpoint of :class:`jepa.tasks.action_conditioned.ActionConditionedTask`
(read with ``weights_only=True``): its hyper-parameters name the encoder and predictor sizes; the frozen encoder
must have been saved (``save_frozen: true``) unless it is a released, pretrained one.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from jepa.data.encode import encode_video
from jepa.planning.cem import CEMConfig
from jepa.planning.energy import WorldModel
from jepa.planning.envs.reacher import PointReacher, random_trajectory
from jepa.planning.landscape import energy_landscape, landscape_image, write_png
from jepa.planning.mpc import Episode, run_mpc_episode, run_random_episode
from jepa.predictors.action_conditioned import ACPredictor, ACPredictorConfig


# ---------------------------------------------------------------------------------------------- data
def collect(
    out_dir: str, trajectories: int = 200, length: int = 16, seed: int = 0, image_size: int = 64, dims: int = 2,
    fps: int = 4,
) -> list[tuple[str, str]]:  # fmt: skip
    """Write random-action simulator trajectories as ``<k>.mp4`` + ``<k>.npy`` (states ``(length, 7)``).

    Args:
        out_dir: output folder (created).
        trajectories: number of trajectories.
        length: frames per trajectory.
        seed: random seed.
        image_size: observation side.
        dims: 2 (x-y plane) or 3.
        fps: frame rate written in the videos (4 = the AC sampling rate, so consecutive frames are consecutive
            training frames).

    Returns:
        The ``(video, states)`` path pairs.
    """
    os.makedirs(out_dir, exist_ok=True)
    env, rng = PointReacher(image_size=image_size, dims=dims), np.random.default_rng(seed)
    pairs = []
    for k in range(trajectories):
        frames, states = random_trajectory(env, length, rng)
        video, npy = os.path.join(out_dir, f"{k:06d}.mp4"), os.path.join(out_dir, f"{k:06d}.npy")
        encode_video(video, frames, fps=fps, crf=10)
        np.save(npy, states)
        pairs.append((video, npy))
    return pairs


# ---------------------------------------------------------------------------------------------- world model
def load_world_model(checkpoint: str, device: str = "cpu", use_cache: bool = True) -> WorldModel:
    """Rebuild encoder + AC predictor from an ``ActionConditionedTask`` Lightning checkpoint (weights only)."""
    import jepa

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hp, state = ckpt.get("hyper_parameters", {}), ckpt["state_dict"]
    encoder = jepa.create_encoder(hp.get("encoder", "vjepa2_vitg_256"), pretrained=hp.get("pretrained", False),
                                  **dict(hp.get("encoder_overrides") or {}))  # fmt: skip
    enc_state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    if enc_state:
        encoder.load_state_dict(enc_state, strict=True)
    elif not hp.get("pretrained", False):
        raise ValueError(
            f"{checkpoint}: no encoder weights saved and the encoder is not pretrained; train with save_frozen: true"
        )
    cfg = encoder.config
    values = {"encoder_dim": cfg.embed_dim, "img_size": cfg.img_size, "patch_size": cfg.patch_size}
    values.update(hp.get("predictor_overrides") or {})
    predictor = ACPredictor(ACPredictorConfig(**values))
    predictor.load_state_dict({k[len("predictor.") :]: v for k, v in state.items() if k.startswith("predictor.")})
    return WorldModel(encoder.eval(), predictor.eval(), use_cache=use_cache).to(device)


def write_gif(path: str, frames: list[np.ndarray], fps: int = 2) -> None:
    """Write ``(H, W, 3)`` uint8 frames as an animated GIF (PyAV)."""
    import av

    with av.open(path, "w", format="gif") as container:
        stream = container.add_stream("gif", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "rgb8"
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format="rgb8")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ---------------------------------------------------------------------------------------------- planning
@dataclass
class PlanConfig:
    """Settings of :func:`plan` (YAML keys of the same names)."""

    checkpoint: str = ""
    out_dir: str = "runs/plan"
    episodes: int = 20
    steps: int = 12
    seed: int = 0
    min_distance: float = 0.15
    max_distance: float = 0.35
    success_threshold: float = 0.05
    use_cache: bool = True
    gifs: int = 2
    env: dict[str, Any] = field(default_factory=lambda: {"image_size": 64, "dims": 2})
    cem: dict[str, Any] = field(default_factory=dict)


def start_goal_pairs(
    env: PointReacher, count: int, seed: int, low: float, high: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (start, goal) states with ``low ≤ distance ≤ high`` (seeded)."""
    rng, pairs = np.random.default_rng(seed), []
    while len(pairs) < count:
        start, goal = env.sample_state(rng), env.sample_state(rng)
        if low <= env.distance(start, goal) <= high:
            pairs.append((start, goal))
    return pairs


def _episode_record(ep: Episode) -> dict[str, Any]:
    return {
        "distances": [round(d, 5) for d in ep.distances],
        "energies": [round(e, 5) for e in ep.energies],
        "planned_energies": [round(e, 5) for e in ep.planned_energies],
        "actions": [np.round(a, 5).tolist() for a in ep.actions],
    }


def plan(
    config: str | None = None, checkpoint: str | None = None, out_dir: str | None = None, episodes: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """Run CEM-MPC episodes on the simulator from goal images, and a random-action baseline on the same pairs.

    Args:
        config: YAML with :class:`PlanConfig` keys (``checkpoint``, ``episodes``, ``steps``, ``env``, ``cem``, …).
        checkpoint / out_dir / episodes: override the config.
        device: torch device.

    Writes to ``out_dir``: ``summary.json`` (success rate and final distance, planner vs random),
    ``episodes.json`` (per-step distances, energies, actions), ``energy.csv`` (episode, step, energy, distance) and
    ``episode_<k>.gif`` (observation | goal) for the first ``gifs`` episodes.

    Returns:
        The summary dict.
    """
    values: dict[str, Any] = {}
    if config is not None:
        import yaml

        from jepa.recipes import resolve_config

        with open(resolve_config(config)) as f:  # a file, or a shipped recipe name such as plan_sim_tiny.yaml
            values = yaml.safe_load(f) or {}
    cfg = PlanConfig(**values)
    cfg.checkpoint = checkpoint or cfg.checkpoint
    cfg.out_dir = out_dir or cfg.out_dir
    cfg.episodes = episodes or cfg.episodes
    if not cfg.checkpoint:
        raise ValueError("plan: no checkpoint (give --checkpoint or `checkpoint:` in the config)")
    os.makedirs(cfg.out_dir, exist_ok=True)
    world_model = load_world_model(cfg.checkpoint, device, cfg.use_cache)
    env = PointReacher(**cfg.env)
    cem_cfg = CEMConfig(**{**cfg.cem, "axis": {int(k): float(v) for k, v in (cfg.cem.get("axis") or {}).items()}})
    records, rows = [], []
    planner_final, random_final = [], []
    for k, (start, goal) in enumerate(
        start_goal_pairs(env, cfg.episodes, cfg.seed, cfg.min_distance, cfg.max_distance)
    ):
        ep = run_mpc_episode(env, world_model, start, goal, cem_cfg, cfg.steps, seed=cfg.seed + k)
        baseline = run_random_episode(env, start, goal, cfg.steps, seed=cfg.seed + k)
        planner_final.append(ep.distances[-1])
        random_final.append(baseline.distances[-1])
        records.append({"start": start.tolist(), "goal": goal.tolist(), "planner": _episode_record(ep),
                        "random": _episode_record(baseline)})  # fmt: skip
        rows += [(k, t, e, d) for t, (e, d) in enumerate(zip(ep.energies, ep.distances, strict=True))]
        if k < cfg.gifs:
            goal_image = env.render(goal)
            write_gif(
                os.path.join(cfg.out_dir, f"episode_{k}.gif"), [np.concatenate([f, goal_image], 1) for f in ep.frames]
            )
    thr = cfg.success_threshold
    summary = {
        "episodes": cfg.episodes,
        "steps": cfg.steps,
        "success_threshold_m": thr,
        "planner": {"success_rate": float(np.mean(np.array(planner_final) < thr)),
                    "final_distance_mean": float(np.mean(planner_final))},
        "random": {"success_rate": float(np.mean(np.array(random_final) < thr)),
                   "final_distance_mean": float(np.mean(random_final))},
        "initial_distance_mean": float(np.mean([r["planner"]["distances"][0] for r in records])),
        "cem": {**asdict(cem_cfg), "axis": {str(k): v for k, v in cem_cfg.axis.items()}},
    }  # fmt: skip
    with open(os.path.join(cfg.out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(cfg.out_dir, "episodes.json"), "w") as f:
        json.dump(records, f)
    with open(os.path.join(cfg.out_dir, "energy.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["episode", "step", "energy", "distance_m"])
        writer.writerows(rows)
    return summary


def landscape(
    checkpoint: str, out_png: str = "landscape.png", seed: int = 0, size: int = 9, extent: float = 0.075,
    axes: tuple[int, int] = (0, 1), device: str = "cpu",
) -> np.ndarray:  # fmt: skip
    """Plot the energy of one predictor step over a ``size × size`` grid of actions in ``[−extent, extent]²``.

    A random simulator state is moved by a random ground-truth action inside the grid; the energy of each grid
    action vs the frame actually reached is written as a heat map (white frame = ground truth, black dot = minimum)
    to ``out_png`` and as numbers to ``out_png`` with ``.json``.

    Returns:
        ``(size, size)`` energies.
    """
    world_model = load_world_model(checkpoint, device)
    env, rng = PointReacher(), np.random.default_rng(seed)
    start = env.sample_state(rng, margin=extent + 0.01)
    values = np.linspace(-extent, extent, size)
    gt_index = rng.integers(0, size, size=2)
    action = np.zeros(7, dtype=np.float32)
    action[list(axes)] = values[gt_index]
    frame0 = world_model.encode(torch.from_numpy(env.reset(start))[None])
    frame1 = world_model.encode(torch.from_numpy(env.step(action))[None])
    state0 = torch.from_numpy(start).to(device)[None]
    energies = energy_landscape(world_model, frame0, state0, frame1, values.tolist(), axes).cpu().numpy()
    write_png(out_png, landscape_image(energies, marker=(int(gt_index[0]), int(gt_index[1]))))
    with open(os.path.splitext(out_png)[0] + ".json", "w") as f:
        json.dump({"values": values.tolist(), "axes": list(axes), "ground_truth": values[gt_index].tolist(),
                   "energies": energies.tolist()}, f, indent=2)  # fmt: skip
    return energies
