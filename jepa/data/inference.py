"""Inference inputs for ``jepa predict``: video files, folders of videos, or CSV lists, with evaluation transforms."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from jepa.data.clips import load_clips
from jepa.data.csv_list import read_sample_list
from jepa.data.errors import BadSampleError
from jepa.data.sampling import ClipSampling
from jepa.data.transforms import EvalTransform

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def expand_inputs(inputs: str | Sequence[str]) -> list[str]:
    """Expand files, folders (searched recursively for videos and images) and CSV lists into a list of paths.

    A ``.csv``/``.txt``/``.npy`` input is read as the official list format
    (:func:`jepa.data.csv_list.read_sample_list`).

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: the inputs contain no video.
    """
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    paths: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)
            paths += [str(p) for p in found]
        elif path.suffix.lower() in (".csv", ".txt", ".npy"):
            paths += [entry_path for entry_path, _ in read_sample_list(path)]
        elif path.is_file():
            paths.append(str(path))
        else:
            raise FileNotFoundError(f"input {item!r} does not exist (expected a video, a folder or a CSV list)")
    if not paths:
        raise ValueError(f"no video or image found in inputs {items}")
    return paths


class VideoFilesDataset(Dataset):
    """Evaluation clips of a list of videos: ``{"video": (S, 3, T, crop, crop), "path": str}``.

    S = ``num_clips × num_views`` (segments, each with its spatial views, segment-major). Clip positions are
    deterministic (``random_clip_sampling=False``) so predictions are reproducible. A video that cannot be read is
    skipped with a warning, and ``skipped`` lists it.
    """

    def __init__(self, paths: Sequence[str], sampling: ClipSampling, transform: EvalTransform) -> None:
        self.paths = list(paths)
        self.sampling = sampling
        self.transform = transform
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        path = self.paths[index]
        try:
            sample = load_clips(path, self.sampling, np.random.default_rng(0))
        except BadSampleError as error:
            log.warning("skipping %s", error)
            self.skipped.append(path)
            return None
        views = [view for clip in sample.clips for view in self.transform(clip)]  # S × (3, T, crop, crop)
        return {"video": torch.stack(views), "path": path}


def collate_skipping_none(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack the samples that loaded; unreadable ones (``None``) are dropped from the batch."""
    kept = [sample for sample in samples if sample is not None]
    if not kept:
        return {"video": torch.empty(0, 0, 3, 0, 0, 0), "path": []}
    return {"video": torch.stack([s["video"] for s in kept]), "path": [s["path"] for s in kept]}


class VideoFilesDataModule(pl.LightningDataModule):
    """Videos (files, folders, CSV lists) for ``jepa predict``, evaluated as the probes evaluate them.

    Args:
        inputs: a path or a list of paths: video/image files, folders, or CSV lists.
        frames_per_clip: frames per clip.
        frame_step: step between sampled frames (exclusive with ``fps``).
        fps: sampling rate in frames per second (exclusive with ``frame_step``).
        num_clips: temporal segments per video, each encoded separately.
        num_views: spatial views per segment (1 = resize + centre crop, 3 = three crops along the long side).
        crop_size: side of the square crop fed to the encoder.
        batch_size: videos per batch.
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        inputs: str | list[str],
        frames_per_clip: int = 16,
        frame_step: int | None = 4,
        fps: float | None = None,
        num_clips: int = 1,
        num_views: int = 1,
        crop_size: int = 256,
        batch_size: int = 1,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if (frame_step is None) == (fps is None):
            raise ValueError("VideoFilesDataModule: give exactly one of frame_step and fps")
        self.inputs = inputs
        self.sampling = ClipSampling(
            frames_per_clip=frames_per_clip,
            frame_step=frame_step,
            fps=fps,
            num_clips=num_clips,
            random_clip_sampling=False,
            allow_clip_overlap=True,
        )
        self.transform = EvalTransform(crop_size=crop_size, num_views=num_views)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.dataset: VideoFilesDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        self.dataset = VideoFilesDataset(expand_inputs(self.inputs), self.sampling, self.transform)

    def predict_dataloader(self) -> DataLoader:
        if self.dataset is None:
            self.setup("predict")
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_skipping_none,
            shuffle=False,
        )
