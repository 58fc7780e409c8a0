"""Lightning data modules: probe classification, pretraining mixtures, images as videos.

Batch format of the collate functions (from the sample dicts of `jepa.data.datasets`):

| key | value |
|---|---|
| `clips` | `list[Tensor (B, 3, T, H, W)]`, one per segment × view, segment-major (`num_segments · num_views`) |
| `label` | `Tensor (B,)` int64 |
| `indices` | `list[Tensor (B, fpc)]` int64, one per segment |
| `path` | `list[str]`; `source` (`list[str]`) for mixtures |
| `dataset` | `Tensor (B,)` int64 source index |
| `fpc` | int |
| `skipped` | `Tensor ()` int64: bad samples skipped by the workers since their previous samples; log it with
  `self.log("data/skipped", batch["skipped"].float(), reduce_fx="sum", sync_dist=True)` |

`PretrainDataModule` default collate groups by fpc and returns a LIST of such batches (one per distinct fpc, in
first-seen order); a `collate_fn` (e.g. `jepa.data.masks.MaskCollator`) replaces it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from jepa.data.csv_list import SampleList
from jepa.data.datasets import VideoClipDataset
from jepa.data.image_folder import scan_image_folder
from jepa.data.mixing import DistributedWeightedSampler, MixtureSource, WeightedMixture
from jepa.data.sampling import ClipSampling
from jepa.data.shards import EpochDataLoader, ShardDataset
from jepa.data.transforms import EvalTransform, PretrainTransform, ProbeTrainTransform

__all__ = [
    "DataSource",
    "ImageAsVideoDataModule",
    "PretrainDataModule",
    "VideoClassificationDataModule",
    "collate_by_fpc",
    "collate_samples",
    "is_shard_url",
    "seed_worker",
]


# ---------------------------------------------------------------------------------------------------------- collate
def collate_samples(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack sample dicts of one fpc into a batch (see the module docstring for the keys and shapes)."""
    if not samples:
        raise ValueError("collate_samples: empty list of samples")
    n_views = len(samples[0]["clips"])
    for s in samples:
        if len(s["clips"]) != n_views:
            raise ValueError(f"collate_samples: {s['path']} has {len(s['clips'])} clips, the batch {n_views}")
    batch: dict[str, Any] = {
        "clips": [torch.stack([s["clips"][v] for s in samples]) for v in range(n_views)],  # each (B, 3, T, H, W)
        "label": torch.as_tensor([int(s["label"]) for s in samples], dtype=torch.int64),
        "indices": [torch.stack([s["indices"][i] for s in samples]) for i in range(len(samples[0]["indices"]))],
        "path": [s["path"] for s in samples],
        "dataset": torch.as_tensor([int(s.get("dataset", 0)) for s in samples], dtype=torch.int64),
        "fpc": int(samples[0]["fpc"]),
        "skipped": torch.as_tensor(sum(int(s.get("skipped", 0)) for s in samples), dtype=torch.int64),
    }
    if "source" in samples[0]:
        batch["source"] = [s["source"] for s in samples]
    return batch


def collate_by_fpc(samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group samples by `fpc` (first-seen order) and collate each group → list of batches."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for s in samples:
        groups.setdefault(int(s["fpc"]), []).append(s)
    return [collate_samples(g) for g in groups.values()]


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: seed python `random` and numpy from the worker's torch seed (reproducible)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def is_shard_url(path: str | Sequence[str]) -> bool:
    """True for WebDataset shard inputs: `.tar` files, brace patterns, `pipe:` URLs (or lists of them)."""
    if not isinstance(path, str):
        return len(path) > 0 and all(is_shard_url(p) for p in path)
    return path.startswith("pipe:") or path.endswith(".tar") or ("{" in path and ".." in path)


def _loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    collate_fn: Callable,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    sampler: Any = None,
    seed: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
) -> DataLoader:
    iterable = isinstance(dataset, IterableDataset)
    cls = EpochDataLoader if iterable else DataLoader
    return cls(
        dataset,
        batch_size=batch_size,
        shuffle=False if (iterable or sampler is not None) else shuffle,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )


# --------------------------------------------------------------------------------------------- classification probes
def _one_of(split: str, value: Any, alias: Any) -> Any:
    if value is not None and alias is not None:
        raise ValueError(f"VideoClassificationDataModule: give `{split}` or `{split}_csv`, not both")
    return value if value is not None else alias


class VideoClassificationDataModule(pl.LightningDataModule):
    """Train / val / test video classification data from CSV lists or WebDataset shards.

    Args:
        train, val, test: a CSV / npy list, shard URL / brace pattern, or a list of those (None: no such split).
        frames_per_clip, frame_step, fps: clip sampling (exactly one of `frame_step`, `fps`).
        num_segments: clips per video (official `num_segments`), each from its own segment.
        num_views: spatial views per clip at evaluation (1 or 3).
        crop_size: output resolution.
        random_clip_sampling: official default True, also for val/test.
        hflip: horizontal flip in the training augmentation (off for classification, on for EK100).
        batch_size, num_workers, pin_memory, persistent_workers: DataLoader settings.
        shuffle_buffer: shuffle buffer for shard inputs.
        train_epoch_size: with shard training inputs, read them resampled with this many samples per rank per epoch.
        seed: seeds workers and clip sampling.
        train_csv, val_csv, test_csv: the same as `train`, `val`, `test` (the names of the official eval configs, so
            `jepa fit --config vitl_ssv2_probe.yaml --data.train_csv T.csv --data.val_csv V.csv` works); give one
            spelling per split.
    """

    def __init__(
        self,
        train: str | list[str] | None = None,
        val: str | list[str] | None = None,
        test: str | list[str] | None = None,
        frames_per_clip: int = 16,
        frame_step: int | None = 4,
        fps: float | None = None,
        num_segments: int = 1,
        num_views: int = 1,
        crop_size: int = 224,
        random_clip_sampling: bool = True,
        hflip: bool = False,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        shuffle_buffer: int = 256,
        train_epoch_size: int | None = None,
        seed: int = 0,
        train_csv: str | list[str] | None = None,
        val_csv: str | list[str] | None = None,
        test_csv: str | list[str] | None = None,
    ) -> None:
        super().__init__()
        self.paths = {
            split: _one_of(split, value, alias)
            for split, value, alias in (("train", train, train_csv), ("val", val, val_csv), ("test", test, test_csv))
        }
        self.crop_size = crop_size
        self.num_views = num_views
        self.hflip = hflip
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.shuffle_buffer = shuffle_buffer
        self.train_epoch_size = train_epoch_size
        self.seed = seed
        self.sampling = ClipSampling(
            frames_per_clip=frames_per_clip,
            fps=fps,
            frame_step=None if fps is not None else frame_step,
            num_clips=num_segments,
            random_clip_sampling=random_clip_sampling,
            allow_clip_overlap=True,
        )
        self.datasets: dict[str, Dataset] = {}

    def build_dataset(self, split: str) -> Dataset:
        """The dataset of one split (`train` uses `ProbeTrainTransform`, the others `EvalTransform`)."""
        path = self.paths[split]
        if path is None:
            raise ValueError(f"{type(self).__name__}: no {split!r} data configured")
        if split == "train":
            transform = ProbeTrainTransform(crop_size=self.crop_size, hflip=self.hflip)
        else:
            transform = EvalTransform(crop_size=self.crop_size, num_views=self.num_views)
        if is_shard_url(path):
            resampled = split == "train" and self.train_epoch_size is not None
            return ShardDataset(
                path,
                self.sampling,
                transform,
                shuffle_buffer=self.shuffle_buffer if split == "train" else 0,
                shuffle_shards=split == "train",
                seed=self.seed,
                resampled=resampled,
                epoch_size=self.train_epoch_size if resampled else None,
                name=f"{split} shards",
            )
        lists = [path] if isinstance(path, str) else list(path)
        return VideoClipDataset(SampleList(lists), self.sampling, transform, seed=self.seed, name=f"{split} data")

    def setup(self, stage: str | None = None) -> None:
        for split, path in self.paths.items():
            if path is not None and split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def _split_loader(self, split: str) -> DataLoader:
        self.setup()
        train = split == "train"
        return _loader(
            self.datasets[split],
            self.batch_size,
            self.num_workers,
            collate_samples,
            shuffle=train,
            drop_last=train,
            seed=self.seed,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._split_loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._split_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._split_loader("test")


# ------------------------------------------------------------------------------------------------------- pretraining
@dataclass
class DataSource:
    """One pretraining source.

    Args:
        name: recorded in every sample (`source`).
        path: CSV / npy list, image folder, shard URL / brace pattern, or a list of those of one kind.
        weight: mixture weight (normalised over sources).
        frames_per_clip: fpc of this source (official `dataset_fpcs`).
        fps: clip sampling frame rate (V-JEPA 2: 4 for every source).
    """

    name: str
    path: str | list[str]
    weight: float = 1.0
    frames_per_clip: int = 16
    fps: float = 4.0

    def resolved_paths(self) -> list[str]:
        """The paths with environment variables expanded (`${VIDEOMIX_ROOT}/k710.csv`); unset variables fail."""
        out = []
        for p in [self.path] if isinstance(self.path, str) else self.path:
            expanded = os.path.expanduser(os.path.expandvars(p))
            if "$" in expanded:
                raise ValueError(
                    f"data source {self.name!r}: unresolved environment variable in path {p!r}; "
                    "export it (e.g. VIDEOMIX_ROOT=/data/videomix) or set the path explicitly"
                )
            out.append(expanded)
        return out


class PretrainDataModule(pl.LightningDataModule):
    """Pretraining clips from a weighted mixture of sources (shards, CSV lists, image folders).

    Args:
        sources: the mixture members.
        crop_size: `PretrainTransform` output size; `scale`, `ratio`, `hflip` its random-resized-crop / flip.
        batch_size, num_workers, pin_memory, persistent_workers: DataLoader settings (`drop_last=True`).
        epoch_size: samples per rank per epoch (`WeightedMixture`; official: ipe · batch size).
        mode: `"mixture"` streams a `WeightedMixture`; `"official"` concatenates CSV sources into one
            `VideoClipDataset` drawn by `DistributedWeightedSampler` (official `VideoDataset` + `datasets_weights`).
        shuffle_buffer: per-reader shuffle buffer of shard sources.
        collate_fn: list of samples → batch; default `collate_by_fpc`. The mask collator plugs in here.
        seed: base seed of mixing, sampling and workers.
    """

    def __init__(
        self,
        sources: list[DataSource],
        crop_size: int = 256,
        scale: tuple[float, float] = (0.3, 1.0),
        ratio: tuple[float, float] = (0.75, 1.35),
        hflip: bool = True,
        batch_size: int = 24,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        epoch_size: int | None = None,
        mode: Literal["mixture", "official"] = "mixture",
        shuffle_buffer: int = 256,
        collate_fn: Callable[[list[dict[str, Any]]], Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not sources:
            raise ValueError("PretrainDataModule: expected at least one source")
        self.sources = list(sources)
        self.crop_size, self.scale, self.ratio, self.hflip = crop_size, tuple(scale), tuple(ratio), hflip
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.epoch_size = epoch_size
        self.mode = mode
        self.shuffle_buffer = shuffle_buffer
        self.collate_fn = collate_fn if collate_fn is not None else collate_by_fpc
        self.seed = seed
        self.dataset: Dataset | None = None
        self.sampler: DistributedWeightedSampler | None = None

    @property
    def dataset_fpcs(self) -> list[int]:
        """fpc of each source (what `MaskCollator(dataset_fpcs=...)` needs)."""
        return [s.frames_per_clip for s in self.sources]

    def _transform(self) -> PretrainTransform:
        return PretrainTransform(crop_size=self.crop_size, scale=self.scale, ratio=self.ratio, hflip=self.hflip)

    def _source_dataset(self, i: int, src: DataSource) -> Dataset:
        sampling = ClipSampling(frames_per_clip=src.frames_per_clip, fps=src.fps)
        paths = src.resolved_paths()
        if is_shard_url(paths):
            return ShardDataset(
                paths,
                sampling,
                self._transform(),
                shuffle_buffer=self.shuffle_buffer,
                seed=self.seed + i,
                resampled=True,
                dataset=i,
                name=src.name,
            )
        lists: list[Any] = [scan_image_folder(p)[0] if os.path.isdir(p) else p for p in paths]
        return VideoClipDataset(SampleList(lists), sampling, self._transform(), seed=self.seed + i, name=src.name)

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        if self.mode == "mixture":
            members = [MixtureSource(s.name, self._source_dataset(i, s), s.weight) for i, s in enumerate(self.sources)]
            self.dataset = WeightedMixture(members, seed=self.seed, epoch_size=self.epoch_size)
            return
        if any(is_shard_url(s.resolved_paths()) for s in self.sources):
            raise ValueError(
                "PretrainDataModule(mode='official') needs CSV / npy sources; use mode='mixture' for shards"
            )
        lists, samplings = [], []
        weights = []
        for s in self.sources:
            paths = s.resolved_paths()
            for p in paths:  # a source with several lists shares its weight equally between them
                lists.append(scan_image_folder(p)[0] if os.path.isdir(p) else p)
                samplings.append(ClipSampling(frames_per_clip=s.frames_per_clip, fps=s.fps))
                weights.append(s.weight / len(paths))
        samples = SampleList(lists)
        self.dataset = VideoClipDataset(samples, samplings, self._transform(), seed=self.seed, name="pretrain")
        self.sampler = DistributedWeightedSampler(samples.sizes, weights, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        assert self.dataset is not None
        return _loader(
            self.dataset,
            self.batch_size,
            self.num_workers,
            self.collate_fn,
            drop_last=True,
            sampler=self.sampler,
            seed=self.seed,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )


# ---------------------------------------------------------------------------------------------------- images as video
class ImageAsVideoDataModule(VideoClassificationDataModule):
    """Image classification data (ImageNet-style folders `root/<class>/*.jpg` or CSV lists) as static videos.

    Each image is repeated `frames_per_clip` times (spec data.md §2.3) and goes through the video transforms, so the
    batches look like `VideoClassificationDataModule` batches with `T = frames_per_clip` identical frames.

    Args:
        train, val, test: image folder or CSV / npy list (None: no such split).
        frames_per_clip: frames of the static video (paper: 16).
        Other arguments as `VideoClassificationDataModule`.
    """

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        frames_per_clip: int = 16,
        crop_size: int = 224,
        num_views: int = 1,
        hflip: bool = True,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(
            train=train,
            val=val,
            test=test,
            frames_per_clip=frames_per_clip,
            frame_step=1,
            num_views=num_views,
            crop_size=crop_size,
            hflip=hflip,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            seed=seed,
        )
        self.class_map: dict[str, int] | None = None

    def build_dataset(self, split: str) -> Dataset:
        path = self.paths[split]
        if isinstance(path, str) and os.path.isdir(path):
            samples, class_map = scan_image_folder(path)
            self.class_map = self.class_map or class_map
            if split == "train":
                transform = ProbeTrainTransform(crop_size=self.crop_size, hflip=self.hflip)
            else:
                transform = EvalTransform(crop_size=self.crop_size, num_views=self.num_views)
            return VideoClipDataset(SampleList([samples]), self.sampling, transform, seed=self.seed, name=split)
        return super().build_dataset(split)
