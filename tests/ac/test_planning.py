"""Simulator, world-model rollouts (cached = uncached), landscape/PNG/GIF outputs, and a CI-sized "it plans" run."""

from __future__ import annotations

import struct
import zlib

import av
import numpy as np
import torch

import jepa
from jepa.planning.cem import CEMConfig
from jepa.planning.commands import write_gif
from jepa.planning.energy import WorldModel, feature_norm
from jepa.planning.envs import PointReacher, random_trajectory
from jepa.planning.landscape import energy_landscape, landscape_image, write_png
from jepa.planning.mpc import run_mpc_episode, run_random_episode
from jepa.predictors.action_conditioned import ac_predictor_tiny
from jepa.tasks.action_conditioned import ActionConditionedTask


def test_reacher_is_deterministic_and_clips_actions():
    env = PointReacher(image_size=32)
    obs = env.reset(np.zeros(7, dtype=np.float32))
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8
    env.step(np.array([0.5, -0.01, 0.3, 1.0, 1.0, 1.0, 0.0], dtype=np.float32))
    np.testing.assert_allclose(env.state[:3], [0.075, -0.01, 0.0], atol=1e-7)  # clipped dx, dz ignored in 2-D
    assert np.all(env.state[3:6] == 0)
    a = random_trajectory(PointReacher(image_size=32), 5, np.random.default_rng(0))
    b = random_trajectory(PointReacher(image_size=32), 5, np.random.default_rng(0))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[1].shape == (5, 7)
    assert not np.array_equal(env.render(np.zeros(7)), env.render(np.array([0.1, 0, 0, 0, 0, 0, 0])))


def test_world_model_cached_rollout_equals_official_rollout():
    torch.manual_seed(0)
    predictor = ac_predictor_tiny(encoder_dim=32, embed_dim=32, num_heads=2, img_size=32).eval()
    feat = feature_norm(torch.randn(1, 4, 32))
    state = torch.tensor([[0.1, 0.2, 0.3, 0.1, -0.2, 0.3, 0.5]])
    actions = torch.randn(6, 3, 7) * 0.05
    cached = WorldModel(torch.nn.Identity(), predictor, use_cache=True).rollout(feat, state, actions)
    official = WorldModel(torch.nn.Identity(), predictor, use_cache=False).rollout(feat, state, actions)
    torch.testing.assert_close(cached, official, atol=1e-5, rtol=0)


def test_landscape_png_and_gif(tmp_path):
    torch.manual_seed(0)
    predictor = ac_predictor_tiny(encoder_dim=32, embed_dim=32, num_heads=2, img_size=32).eval()
    wm = WorldModel(torch.nn.Identity(), predictor)
    feat, goal = feature_norm(torch.randn(1, 4, 32)), feature_norm(torch.randn(1, 4, 32))
    energies = energy_landscape(wm, feat, torch.zeros(1, 7), goal, values=[-0.05, 0.0, 0.05])
    actions = torch.zeros(1, 1, 7)
    actions[0, 0, 0], actions[0, 0, 1] = -0.05, 0.05
    torch.testing.assert_close(energies[0, 2], wm.energy(feat, torch.zeros(1, 7), goal, actions)[0])
    image = landscape_image(energies.numpy(), cell=4, marker=(1, 1))
    path = tmp_path / "l.png"
    write_png(str(path), image)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 3 * width)
    assert (width, height) == (12, 12) and np.array_equal(rows[:, 1:].reshape(12, 12, 3), image)
    frames = [np.full((16, 32, 3), 40 * i, np.uint8) for i in range(3)]
    write_gif(str(tmp_path / "e.gif"), frames)
    with av.open(str(tmp_path / "e.gif")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3


def test_ci_sized_train_then_plan_beats_random():
    """Random trajectories → train a tiny AC predictor through the task's loss → CEM-MPC from goal images."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    env, rng = PointReacher(image_size=32, blob_sigma=0.12), np.random.default_rng(0)
    trajs = [random_trajectory(env, 6, rng, gripper_flip_prob=0.0) for _ in range(48)]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    clips = torch.stack([(torch.from_numpy(f).float() / 255 - mean) / std for f, _ in trajs]).permute(0, 4, 1, 2, 3)
    states = torch.stack([torch.from_numpy(s) for _, s in trajs])  # (48, 6, 7)
    actions = states[:, 1:] - states[:, :-1]  # rotations are 0 in the reacher
    encoder = jepa.create_encoder(
        "vit_tiny", img_size=32, num_frames=2, depth=1, embed_dim=48, num_heads=2, patch_size=8
    )
    task = ActionConditionedTask(encoder=encoder, predictor_overrides={"embed_dim": 48, "depth": 2, "num_heads": 2})
    optimizer = torch.optim.AdamW(task.predictor.parameters(), lr=3e-3, weight_decay=0.0)
    features = task.encode_frames(clips)  # (48, 6·16, 48) encoded once: the encoder is frozen
    first = None
    for step in range(120):
        idx = torch.from_numpy(np.random.default_rng(step).choice(48, 16, replace=False))
        loss, _ = task.compute_loss({"features": features[idx], "actions": actions[idx], "states": states[idx]})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.7 * first
    wm = WorldModel(encoder, task.predictor.eval())
    cfg = CEMConfig(horizon=1, samples=64, topk=8, iterations=4, momentum_mean=0.15, momentum_std=0.15, maxnorm=0.075,
                    axis={2: 0.0, 3: 0.0})  # fmt: skip
    planner, random = [], []
    for k in range(3):
        start, goal = env.sample_state(rng), env.sample_state(rng)
        planner.append(run_mpc_episode(env, wm, start, goal, cfg, steps=5, seed=k).distances)
        random.append(run_random_episode(env, start, goal, steps=5, seed=k).distances)
    planner_final = np.mean([d[-1] for d in planner])
    assert planner_final < 0.6 * np.mean([d[-1] for d in random])
    assert planner_final < 0.6 * np.mean([d[0] for d in planner])
