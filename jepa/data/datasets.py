"""Map-style video clip dataset over sample lists (CSV / npy / image folders) with skip-and-retry of bad samples.

Sample format (a dict, shared by `VideoClipDataset`, `jepa.data.shards.ShardDataset` and the mixtures):

| key | value |
|---|---|
| `clips` | `list[Tensor (3, T, H, W)]` float32, `num_clips · num_views` tensors, segment-major: |
| | `[seg0_view0, seg0_view1, …, seg1_view0, …]` (each clip segment, then each transform view) |
| `label` | int |
| `indices` | `list[Tensor (fpc,)]` int64, the frame indices of each segment |
| `path` | str, the file the sample was decoded from |
| `dataset` | int, index of the source list / mixture source |
| `fpc` | int, frames per clip (what `MaskCollator` groups by) |
| `skipped` | int, number of bad samples skipped by this worker since its previous returned sample (see `stats.py`) |

Bad samples (missing, zero-byte, truncated, not a video, undecodable, too short, too large) are never fatal: the
official rule replaces the index with a uniformly random index of the whole dataset until one loads; here the
random index comes from a seeded generator, every skip is counted, and each bad path is warned about once.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from jepa.data.clips import load_clips
from jepa.data.csv_list import SampleList, VideoSampleRef
from jepa.data.errors import BadSampleError
from jepa.data.sampling import ClipSampling, frame_step_for
from jepa.data.stats import SkipCounter

__all__ = ["VideoClipDataset", "apply_transform", "worker_rng"]

Transform = Callable[[torch.Tensor], "torch.Tensor | list[torch.Tensor]"]


def _accepts_rng(transform: Callable) -> bool:
    try:
        return "rng" in inspect.signature(transform).parameters
    except (TypeError, ValueError):
        return False


def apply_transform(
    transform: Transform | None, clip: torch.Tensor, rng: np.random.Generator | None = None
) -> list[torch.Tensor]:
    """Run `transform` on one `(T, H, W, 3)` uint8 clip → list of views `(3, T, h, w)`.

    `rng` is passed as `transform(clip, rng=rng)` when the transform takes an `rng` argument (the transforms of
    `jepa.data.transforms` do), so augmentations follow the dataset's seeded generator. Without a transform the clip
    is returned as one float32 view `(3, T, H, W)` in 0–255.
    """
    if transform is None:
        return [clip.permute(3, 0, 1, 2).float()]  # (T, H, W, 3) -> (3, T, H, W)
    out = transform(clip, rng=rng) if rng is not None and _accepts_rng(transform) else transform(clip)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def worker_rng(seed: int, *extra: int) -> np.random.Generator:
    """A numpy generator unique to (seed, DataLoader worker seed, extra).

    In a DataLoader worker, `torch.initial_seed()` is `base_seed + worker_id` with `base_seed` drawn from the main
    process RNG when the iterator is created: reproducible under `torch.manual_seed` / a seeded DataLoader
    `generator`, and different for every worker and epoch.
    """
    info = torch.utils.data.get_worker_info()
    torch_seed = info.seed if info is not None else torch.initial_seed()
    return np.random.default_rng([int(seed), int(torch_seed) % (2**63), *[int(e) for e in extra]])


class VideoClipDataset(Dataset):
    """Clips of the videos / images of one or more sample lists.

    Args:
        samples: a `SampleList`, a path (or paths) of CSV / npy lists, or a parsed `[(path, label), ...]` list.
        sampling: clip sampling rule, or one per sample list (official `dataset_fpcs`).
        transform: `(T, H, W, 3)` uint8 → `(3, T, h, w)` float32 or a list of views (e.g. `EvalTransform`).
        seed: seeds the clip positions and the retry indices (mixed with the worker seed, see `worker_rng`).
        max_retries: consecutive bad samples tolerated in one `__getitem__` before giving up with a RuntimeError.
        filter_long_videos: files larger than this many bytes are skipped (official default 1e9).
        filter_short_videos: skip videos shorter than one clip (`num_frames < fpc · frame_step`); off as official.
        decode_threads: decoder threads (0 = FFmpeg default).
        name: prefix of skip warnings.
    """

    def __init__(
        self,
        samples: SampleList | str | os.PathLike | Sequence[str] | Sequence[tuple[str, int]],
        sampling: ClipSampling | Sequence[ClipSampling],
        transform: Transform | None = None,
        *,
        seed: int = 0,
        max_retries: int = 100,
        filter_long_videos: int = 10**9,
        filter_short_videos: bool = False,
        decode_threads: int = 0,
        name: str = "VideoClipDataset",
    ) -> None:
        if isinstance(samples, SampleList):
            self.samples = samples
        elif isinstance(samples, (str, os.PathLike)):
            self.samples = SampleList([samples])
        elif len(samples) > 0 and isinstance(samples[0], (tuple, list)):
            self.samples = SampleList([samples])  # one parsed list
        else:
            self.samples = SampleList(list(samples))
        n_lists = len(self.samples.sizes)
        if isinstance(sampling, ClipSampling):
            self.samplings = [sampling] * n_lists
        else:
            self.samplings = list(sampling)
            if len(self.samplings) != n_lists:
                raise ValueError(
                    f"VideoClipDataset: got {len(self.samplings)} ClipSampling for {n_lists} sample lists; "
                    "expected one, or one per list"
                )
        self.transform = transform
        self.seed = seed
        self.max_retries = max_retries
        self.filter_long_videos = filter_long_videos
        self.filter_short_videos = filter_short_videos
        self.decode_threads = decode_threads
        self.skips = SkipCounter(name)
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def dataset_fpcs(self) -> list[int]:
        """Frames per clip of each sample list."""
        return [s.frames_per_clip for s in self.samplings]

    def rng(self) -> np.random.Generator:
        """This process's generator (re-created when the worker / DataLoader iterator changes)."""
        info = torch.utils.data.get_worker_info()
        key = (os.getpid(), info.seed if info is not None else -1)
        if self._rng is None or self._rng_key != key:
            self._rng, self._rng_key = worker_rng(self.seed), key
        return self._rng

    def load(self, ref: VideoSampleRef, rng: np.random.Generator) -> dict[str, Any]:
        """Decode, sample and transform one entry; raises `BadSampleError` for unusable inputs."""
        sampling = self.samplings[ref.dataset]
        if not ref.is_image and os.path.isfile(ref.path) and os.path.getsize(ref.path) > self.filter_long_videos:
            raise BadSampleError(ref.path, f"file larger than filter_long_videos={self.filter_long_videos} bytes")
        sample = load_clips(ref.path, sampling, rng, threads=self.decode_threads)
        if self.filter_short_videos and not sample.info.is_image:
            clip_len = sampling.frames_per_clip * frame_step_for(sampling, sample.info.fps)
            if sample.info.num_frames < clip_len:
                raise BadSampleError(ref.path, f"{sample.info.num_frames} frames < one clip of {clip_len} frames")
        views = [v for clip in sample.clips for v in apply_transform(self.transform, clip, rng)]
        return {
            "clips": views,
            "label": ref.label,
            "indices": [torch.as_tensor(np.asarray(i), dtype=torch.int64) for i in sample.indices],
            "path": ref.path,
            "dataset": ref.dataset,
            "fpc": sampling.frames_per_clip,
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self.rng()
        errors = []
        for _ in range(self.max_retries + 1):
            ref = self.samples[int(index)]
            try:
                out = self.load(ref, rng)
            except BadSampleError as e:
                self.skips.record(e.path, e.reason)
                errors.append(str(e))
                index = int(rng.integers(len(self.samples)))  # official: uniformly random index of all lists
                continue
            out["skipped"] = self.skips.take_delta()
            return out
        raise RuntimeError(
            f"VideoClipDataset: {len(errors)} consecutive bad samples (max_retries={self.max_retries}); "
            f"last errors: {errors[-3:]}"
        )
