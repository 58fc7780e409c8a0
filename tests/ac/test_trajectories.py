"""Trajectory data: generic pairs, raw DROID directories, tar shards; official sampling; bad input skipped."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from jepa.data.encode import encode_video
from jepa.data.trajectories import (
    TrajectoryDataset,
    TrajectoryShardDataset,
    aspect_crop_resize,
    sample_indices,
    write_trajectory_shards,
)

LENGTH = 12


def _frames(n: int = LENGTH, h: int = 32, w: int = 48) -> np.ndarray:
    frames = np.zeros((n, h, w, 3), dtype=np.uint8)
    for t in range(n):
        frames[t, :, : 4 * (t + 1)] = 200  # a bar growing with time identifies the frame
    return frames


def _states(n: int = LENGTH, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    states = rng.uniform(-1, 1, (n, 7)).astype(np.float32)
    states[:, 6] = rng.uniform(0, 1, n)
    return states


def _pair(tmp_path, name: str, frames: np.ndarray, states: np.ndarray) -> tuple[str, str]:
    video, npy = str(tmp_path / f"{name}.mp4"), str(tmp_path / f"{name}.npy")
    encode_video(video, frames, fps=4)
    np.save(npy, states)
    return video, npy


def test_sample_indices_official_rule():
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = sample_indices(100, video_fps=15.0, rng=rng, fps=4, frames_per_clip=8)  # step ceil(15/4) = 4, span 32
        assert len(idx) == 8 and np.all(np.diff(idx) == 4) and idx[0] >= 0 and idx[-1] + 4 <= 99
    with pytest.raises(Exception, match="too short"):
        sample_indices(32, video_fps=15.0, rng=rng)


def test_crop_is_centred_aspect_135_then_squashed():
    frames = torch.zeros(1, 100, 300, 3, dtype=torch.uint8)
    frames[:, :, 82:217] = 255  # exactly the centred 135-wide window of a 100-high frame
    out = aspect_crop_resize(frames, size=20)
    assert out.shape == (3, 1, 20, 20)
    white = (1 - 0.485) / 0.229
    torch.testing.assert_close(out[0], torch.full_like(out[0], white), atol=1e-4, rtol=0)


def test_generic_dataset_samples_and_skips_bad_input(tmp_path, caplog):
    good = _pair(tmp_path, "good", _frames(), _states())
    mismatch = _pair(tmp_path, "mismatch", _frames(), _states(LENGTH - 2))
    nan_states = _states()
    nan_states[3, 1] = np.nan
    nan = _pair(tmp_path, "nan", _frames(), nan_states)
    short = _pair(tmp_path, "short", _frames(6), _states(6))
    ds = TrajectoryDataset([mismatch, nan, short, good], fps=4, frames_per_clip=8, crop_size=32, seed=0)
    with caplog.at_level(logging.WARNING, logger="jepa.data"):
        samples = [ds[i] for i in range(4)]
    for s in samples:
        assert s["clip"].shape == (3, 8, 32, 32) and s["actions"].shape == (7, 7) and s["states"].shape == (8, 7)
        states = _states()[s["indices"].numpy()]
        np.testing.assert_allclose(s["states"].numpy(), states)
        r0, r1 = Rotation.from_euler("xyz", states[2, 3:6]), Rotation.from_euler("xyz", states[3, 3:6])
        np.testing.assert_allclose(s["actions"][2, 3:6].numpy(), (r1 * r0.inv()).as_euler("xyz"), atol=1e-5)
        np.testing.assert_allclose(s["actions"][:, :3].numpy(), np.diff(states[:, :3], axis=0), atol=1e-6)
    assert sum(s["skipped"] for s in samples) == ds.skips.total >= 3  # bad ones may be drawn again as replacements
    assert {p for p in ds.skips.warned_paths} == {mismatch[0], nan[0], short[0]}
    text = caplog.text
    assert "length mismatch" in text and "non-finite" in text and "too short" in text


def test_droid_directory_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    states = _states()

    def make(name: str, with_gripper: bool) -> str:
        root = tmp_path / name
        (root / "recordings" / "MP4").mkdir(parents=True)
        (root / "metadata_x.json").write_text(json.dumps({"left_mp4_path": "recordings/MP4/1234.mp4"}))
        encode_video(str(root / "recordings" / "MP4" / "1234.mp4"), _frames(), fps=4)
        with h5py.File(root / "trajectory.h5", "w") as h5:
            h5["observation/robot_state/cartesian_position"] = states[:, :6]
            if with_gripper:
                h5["observation/robot_state/gripper_position"] = states[:, 6]
            h5["observation/camera_extrinsics/1234_left"] = np.ones((LENGTH, 6), dtype=np.float32)
        return str(root)

    good, broken = make("good", True), make("broken", False)
    csv = tmp_path / "droid.csv"
    csv.write_text(f"{broken} x\n{good} y\n")
    ds = TrajectoryDataset(str(csv), fps=4, frames_per_clip=8, crop_size=16)
    sample = ds[0]  # broken → replaced by a random other trajectory
    np.testing.assert_allclose(sample["states"].numpy(), states[sample["indices"].numpy()], atol=1e-6)
    assert sample["extrinsics"].shape == (8, 6) and torch.all(sample["extrinsics"] == 1)
    assert ds.skips.total >= 1 and "missing h5 fields" in next(iter(ds.skips.by_reason))


def test_shards_roundtrip_and_skip(tmp_path):
    pairs = [_pair(tmp_path, f"t{i}", _frames(), _states(seed=i)) for i in range(3)]
    pairs.append(_pair(tmp_path, "bad", _frames(), _states(LENGTH + 1)))
    shards = write_trajectory_shards(pairs, str(tmp_path / "shard-%03d.tar"), per_shard=2)
    assert len(shards) == 2
    ds = TrajectoryShardDataset(shards, fps=4, frames_per_clip=8, crop_size=16)
    samples = list(ds)
    assert len(samples) == 3 and ds.skips.total == 1
    for i, s in enumerate(samples):
        np.testing.assert_allclose(s["states"].numpy(), _states(seed=i)[s["indices"].numpy()])
