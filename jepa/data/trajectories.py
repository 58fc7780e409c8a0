"""Robot trajectories for action-conditioned training (spec: ac_planning.md §2).

Three sources, one sample format ``{"clip" (3, F, S, S), "actions" (F−1, 7), "states" (F, 7),
"extrinsics" (F, 6), "indices" (F,), "skipped" int}``:

* **raw DROID** directories (``*.json`` metadata, ``recordings/MP4/<serial>.mp4``, ``trajectory.h5``), read with
  ``h5py`` (optional extra ``droid``);
* **generic**: ``<name>.mp4`` + ``<name>.npy`` — a float ``(L, 7)`` array of states ``[x, y, z, α, β, γ, gripper]``
  (metres, SciPy extrinsic ``"xyz"`` Euler radians, gripper in [0, 1]), one row per video frame;
* **WebDataset shards** of generic trajectories: members ``<key>.mp4`` and ``<key>.states.npy`` (read with
  ``np.load(allow_pickle=False)``; nothing is unpickled).

States are 7-D; actions are consecutive differences with the rotation delta ``R_(t+1)·R_tᵀ`` as Euler xyz.
Sampling follows the official loader: ``step = ceil(video_fps / fps)``, ``end ~ U[step·F, L − 1]``, indices
``arange(end − step·F, end, step)``. Bad trajectories (length mismatch, too short, missing h5 fields, NaN states,
undecodable video) are skipped, counted and warned once (:class:`jepa.data.stats.SkipCounter`).
"""

from __future__ import annotations

import glob
import io
import json
import math
import os
import tarfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, IterableDataset

from jepa.data.decoding import decode_frames, probe_video
from jepa.data.errors import BadSampleError
from jepa.data.rotations import states_to_actions
from jepa.data.stats import SkipCounter

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
H5_POSITION = "observation/robot_state/cartesian_position"
H5_GRIPPER = "observation/robot_state/gripper_position"
H5_EXTRINSICS = "observation/camera_extrinsics/{serial}_left"


# ---------------------------------------------------------------------------------------------- pure helpers
def sample_indices(
    num_frames: int, video_fps: float, rng: np.random.Generator, fps: float = 4.0, frames_per_clip: int = 8
) -> np.ndarray:
    """Official DROID clip sampling → ``(frames_per_clip,)`` frame indices.

    Raises:
        BadSampleError: the video is shorter than ``frames_per_clip · step + 1`` frames.
    """
    step = math.ceil(video_fps / fps)
    span = frames_per_clip * step
    if num_frames - 1 < span:
        raise BadSampleError(None, f"too short: {num_frames} frames, need > {span} (fpc {frames_per_clip} × {step})")
    end = int(rng.integers(span, num_frames))  # [span, L − 1]
    return np.arange(end - span, end, step)


def aspect_crop_resize(frames: torch.Tensor, size: int = 256, max_ratio: float = 1.35) -> torch.Tensor:
    """The official DROID crop, made explicit (QUIRK of the RRC fallback, spec §2): centred crop keeping the full
    height when ``W/H > max_ratio`` (``w = round(max_ratio·H)``; symmetric rule for tall frames), then a bilinear
    squash to ``size × size`` and ImageNet normalisation.

    Args:
        frames: ``(T, H, W, 3)`` uint8.

    Returns:
        ``(3, T, size, size)`` float32.
    """
    _, height, width, _ = frames.shape
    x = frames.permute(0, 3, 1, 2).float() / 255.0  # (T, 3, H, W)
    if width / height > max_ratio:
        w = round(max_ratio * height)
        left = (width - w) // 2
        x = x[..., left : left + w]
    elif width / height < 1 / max_ratio:
        h = round(width * max_ratio)
        top = (height - h) // 2
        x = x[..., top : top + h, :]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).permute(1, 0, 2, 3).contiguous()  # (3, T, size, size)


def check_states(states: np.ndarray, num_frames: int, where: str) -> np.ndarray:
    """Validate a ``(L, 7)`` state array against a video of ``num_frames`` frames (raises BadSampleError)."""
    states = np.asarray(states)
    if states.ndim != 2 or states.shape[1] != 7:
        raise BadSampleError(where, f"states must have shape (L, 7), got {states.shape}")
    if states.shape[0] != num_frames:
        raise BadSampleError(where, f"length mismatch: {states.shape[0]} states for a {num_frames}-frame video")
    if not np.isfinite(states).all():
        raise BadSampleError(where, "non-finite (NaN/inf) states")
    return states.astype(np.float32)


def make_sample(
    video: str | bytes, states: np.ndarray, extrinsics: np.ndarray | None, rng: np.random.Generator, where: str,
    fps: float, frames_per_clip: int, crop_size: int,
) -> dict[str, Any]:  # fmt: skip
    """Sample a clip from one trajectory (video + per-frame states) → the sample dict of this module."""
    info = probe_video(video)
    num_frames = int(info.num_frames)
    states = check_states(states, num_frames, where)
    try:
        indices = sample_indices(num_frames, float(info.fps), rng, fps, frames_per_clip)
    except BadSampleError as err:
        raise BadSampleError(where, err.reason) from None
    frames = decode_frames(video, indices.tolist())  # (F, H, W, 3)
    chosen = torch.from_numpy(states[indices])  # (F, 7)
    extr = torch.zeros(len(indices), 6) if extrinsics is None else torch.from_numpy(np.asarray(extrinsics)[indices])
    return {
        "clip": aspect_crop_resize(frames, crop_size),
        "actions": states_to_actions(chosen.double()).float(),  # (F − 1, 7)
        "states": chosen,
        "extrinsics": extr.float(),
        "indices": torch.from_numpy(indices),
    }


# ---------------------------------------------------------------------------------------------- readers
def read_generic(video: str, states_path: str) -> tuple[str, np.ndarray, None]:
    """Generic format: ``video`` + ``.npy`` ``(L, 7)`` states (no pickles)."""
    try:
        states = np.load(states_path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise BadSampleError(states_path, f"unreadable states file: {err}") from None
    return video, states, None


def read_droid(directory: str, camera: str = "left_mp4_path", rng: np.random.Generator | None = None):
    """Raw DROID directory → ``(video path, states (L, 7), extrinsics (L, 6))``.

    The first ``*.json`` gives the camera serial (``camera_views`` key or the ``camera`` key itself); the video is
    ``recordings/MP4/<serial>.mp4``; states are ``[cartesian_position (6), gripper_position (1)]``.
    """
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - optional extra
        raise ImportError("reading raw DROID needs h5py: pip install 'jepa-lightning[droid]'") from err
    metas = sorted(glob.glob(os.path.join(directory, "*.json")))
    if not metas:
        raise BadSampleError(directory, "no *.json metadata file")
    with open(metas[0]) as f:
        meta = json.load(f)
    keys = meta.get("camera_views", [camera]) if isinstance(meta.get("camera_views"), list) else [camera]
    key = keys[int(rng.integers(len(keys)))] if rng is not None and len(keys) > 1 else keys[0]
    if key not in meta:
        raise BadSampleError(metas[0], f"metadata has no {key!r} entry")
    serial = os.path.splitext(os.path.basename(str(meta[key])))[0]
    video = os.path.join(directory, "recordings", "MP4", f"{serial}.mp4")
    h5_path = os.path.join(directory, "trajectory.h5")
    if not os.path.isfile(h5_path):
        raise BadSampleError(directory, "no trajectory.h5")
    extr_key = H5_EXTRINSICS.format(serial=serial)
    with h5py.File(h5_path, "r") as h5:
        missing = [k for k in (H5_POSITION, H5_GRIPPER, extr_key) if k not in h5]
        if missing:
            raise BadSampleError(h5_path, f"missing h5 fields {missing}")
        position = np.asarray(h5[H5_POSITION], dtype=np.float64)
        gripper = np.asarray(h5[H5_GRIPPER], dtype=np.float64).reshape(-1, 1)
        extrinsics = np.asarray(h5[extr_key], dtype=np.float32)
    if position.shape[0] != gripper.shape[0]:
        raise BadSampleError(h5_path, f"{position.shape[0]} positions but {gripper.shape[0]} gripper values")
    return video, np.concatenate([position, gripper], axis=1), extrinsics


# ---------------------------------------------------------------------------------------------- datasets
class TrajectoryDataset(Dataset):
    """Map-style dataset over generic or raw-DROID trajectories.

    Args:
        items: generic ``(video, states.npy)`` pairs and/or DROID directories; a string is a folder of generic
            pairs (every ``*.mp4`` with a sibling ``*.npy``) or a text file with one DROID directory per line
            (space-delimited, column 0 — the official CSV).
        fps / frames_per_clip / crop_size: sampling and crop (official 4 / 8 / 256).
        seed: base seed; the k-th draw of sample ``i`` by this process at epoch ``e`` uses ``(seed, e, i, k)``, so
            repeated visits sample different clips even when ``set_epoch`` is not called (deterministic for a fixed
            worker layout).
        max_retries: bad trajectories are replaced by random others this many times before raising.
    """

    def __init__(
        self,
        items: str | Sequence[str | tuple[str, str]],
        fps: float = 4.0,
        frames_per_clip: int = 8,
        crop_size: int = 256,
        seed: int = 0,
        max_retries: int = 50,
    ) -> None:
        self.items = self._expand(items)
        if not self.items:
            raise ValueError(f"TrajectoryDataset: no trajectories found in {items!r}")
        self.fps, self.frames_per_clip, self.crop_size = fps, frames_per_clip, crop_size
        self.seed, self.max_retries, self.epoch = seed, max_retries, 0
        self._draws: dict[int, int] = {}
        self.skips = SkipCounter("TrajectoryDataset")

    @staticmethod
    def _expand(items: str | Sequence[str | tuple[str, str]]) -> list[str | tuple[str, str]]:
        if isinstance(items, str):
            if os.path.isdir(items):
                videos = sorted(glob.glob(os.path.join(items, "*.mp4")))
                return [(v, v[:-4] + ".npy") for v in videos]
            with open(items) as f:
                return [line.split()[0] for line in f if line.strip()]
        return [tuple(item) if isinstance(item, (list, tuple)) else item for item in items]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        item = self.items[index]
        if isinstance(item, tuple):
            video, states, extrinsics = read_generic(*item)
            where = item[0]
        else:
            video, states, extrinsics = read_droid(item, rng=rng)
            where = item
        if extrinsics is not None and len(extrinsics) != len(states):
            raise BadSampleError(where, f"{len(extrinsics)} extrinsics rows for {len(states)} states")
        return make_sample(video, states, extrinsics, rng, where, self.fps, self.frames_per_clip, self.crop_size)

    def __getitem__(self, index: int) -> dict[str, Any]:
        draw = self._draws.get(index, 0)
        self._draws[index] = draw + 1
        rng = np.random.default_rng((self.seed, self.epoch, index, draw))
        last: BadSampleError | None = None
        for _ in range(self.max_retries + 1):
            try:
                sample = self.load(index, rng)
                sample["skipped"] = self.skips.take_delta()
                return sample
            except BadSampleError as err:
                self.skips.record(err.path, err.reason)
                last = err
                index = int(rng.integers(len(self.items)))  # official: try another random trajectory
        raise RuntimeError(f"TrajectoryDataset: {self.max_retries + 1} bad trajectories in a row; last: {last}")


def write_trajectory_shards(pairs: Sequence[tuple[str, str]], pattern: str, per_shard: int = 100) -> list[str]:
    """Pack generic ``(video, states.npy)`` pairs into tar shards ``pattern % k`` (members ``<key>.mp4``,
    ``<key>.states.npy``). Returns the shard paths."""
    paths = []
    for start in range(0, len(pairs), per_shard):
        path = pattern % (start // per_shard)
        with tarfile.open(path, "w") as tar:
            for i, (video, states) in enumerate(pairs[start : start + per_shard]):
                key = f"{start + i:08d}"
                for name, src in ((f"{key}.mp4", video), (f"{key}.states.npy", states)):
                    tar.add(src, arcname=name)
        paths.append(path)
    return paths


class TrajectoryShardDataset(IterableDataset):
    """Iterate generic trajectories from tar shards (one pass, shards split across DataLoader workers).

    Args:
        shards: shard paths.
        fps / frames_per_clip / crop_size / seed: as :class:`TrajectoryDataset`.
    """

    def __init__(
        self, shards: Sequence[str], fps: float = 4.0, frames_per_clip: int = 8, crop_size: int = 256, seed: int = 0
    ) -> None:
        self.shards = list(shards)
        self.fps, self.frames_per_clip, self.crop_size, self.seed = fps, frames_per_clip, crop_size, seed
        self.skips = SkipCounter("TrajectoryShardDataset")

    def _members(self, path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
        groups: dict[str, dict[str, bytes]] = {}
        with tarfile.open(path, "r") as tar:
            for info in tar:
                if info.isreg():
                    key, _, ext = info.name.partition(".")
                    groups.setdefault(key, {})[ext] = tar.extractfile(info).read()
        yield from groups.items()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rng = np.random.default_rng((self.seed, worker))
        for path in self.shards[worker::workers]:
            for key, members in self._members(path):
                where = f"{path}:{key}"
                try:
                    if "mp4" not in members or "states.npy" not in members:
                        raise BadSampleError(where, f"needs mp4 and states.npy members, got {sorted(members)}")
                    states = np.load(io.BytesIO(members["states.npy"]), allow_pickle=False)
                    sample = make_sample(
                        members["mp4"], states, None, rng, where, self.fps, self.frames_per_clip, self.crop_size
                    )
                except BadSampleError as err:
                    self.skips.record(err.path, err.reason)
                    continue
                except ValueError as err:
                    self.skips.record(where, f"unreadable states: {err}")
                    continue
                sample["skipped"] = self.skips.take_delta()
                yield sample


def _collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    batch = torch.utils.data.default_collate(samples)
    batch["skipped"] = batch["skipped"].sum()  # int64 scalar: bad trajectories skipped since the previous batch
    return batch


def _build_datamodule_class() -> type:
    """Define :class:`TrajectoryDataModule` on first use, so importing this module does not import Lightning."""
    import lightning.pytorch as pl

    class TrajectoryDataModule(pl.LightningDataModule):
        """Batches of trajectory clips for :class:`jepa.tasks.action_conditioned.ActionConditionedTask`.

        Args:
            root: a folder of generic pairs, a DROID CSV (one directory per line), or a shard glob (``*.tar``).
            batch_size: per process (official 8 per GPU).
            num_workers: DataLoader workers.
            fps / frames_per_clip / crop_size: official 4 / 8 (16 in the paper) / 256.
            seed: sampling seed.
        """

        def __init__(
            self,
            root: str,
            batch_size: int = 8,
            num_workers: int = 0,
            fps: float = 4.0,
            frames_per_clip: int = 8,
            crop_size: int = 256,
            seed: int = 0,
        ) -> None:
            super().__init__()
            self.root, self.batch_size, self.num_workers = root, batch_size, num_workers
            self.kwargs = {"fps": fps, "frames_per_clip": frames_per_clip, "crop_size": crop_size, "seed": seed}
            self.dataset: Dataset | IterableDataset | None = None

        def setup(self, stage: str | None = None) -> None:
            if self.dataset is not None:
                return
            if self.root.endswith(".tar"):
                self.dataset = TrajectoryShardDataset(sorted(glob.glob(self.root)), **self.kwargs)
            else:
                self.dataset = TrajectoryDataset(self.root, **self.kwargs)

        def train_dataloader(self) -> torch.utils.data.DataLoader:
            self.setup()
            shuffle = not isinstance(self.dataset, IterableDataset)
            return torch.utils.data.DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                shuffle=shuffle,
                drop_last=True,
                num_workers=self.num_workers,
                collate_fn=_collate,
                persistent_workers=self.num_workers > 0,
            )

    return TrajectoryDataModule


def __getattr__(name: str) -> Any:
    if name == "TrajectoryDataModule":
        cls = _build_datamodule_class()
        cls.__module__, cls.__qualname__ = __name__, name
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
