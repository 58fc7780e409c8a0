"""Epic-Kitchens-100 action anticipation data: annotations, class remapping, clip sampling, datasets, data modules.

Spec: anticipation.md §2 (annotations, remapping), §3 (sampling, transforms, pipeline).

**Annotation files.** Two CSV formats (with a header row), detected from the columns:

* EK100 (official ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv``): ``video_id``, ``start_frame``,
  ``stop_frame``, ``verb_class``, ``noun_class`` (other columns ignored; ``verb`` / ``noun`` give names if present).
  The video of ``P01_11`` is ``base/P01/videos/P01_11.MP4`` (``file_format 0``) or ``base/P01/P01_11.MP4`` (1).
* your own data ("segments" format): ``video`` (a file path, absolute or relative to the CSV's folder),
  ``start_frame``, ``stop_frame``, ``verb_class``, ``noun_class`` (integers); optional ``verb`` / ``noun``
  (class names). Frames are 0-based presentation indices, ``stop_frame`` exclusive-or-inclusive does not matter
  for anticipation (only the anchor uses it).

Rows whose video file is missing are skipped with one log line per video (official behaviour); the class
mapping is still built from every training row, as the official code does.

**Class remapping** (reproduced exactly, so the released ``ek100-*.pt`` probes keep their class ids): the new ids
follow CPython ``set`` iteration order — ``actions = set(zip(verb_class, noun_class))`` in CSV row order, ``verbs`` /
``nouns`` the sets of the components of ``actions`` in its iteration order, then ``{c: i for i, c in
enumerate(set)}`` (the official code iterates numpy ``int64`` values, whose hashes equal those of Python ints, so
the order is the same). Validation rows whose (verb, noun) pair is not a training action are dropped. The mapping is
saved as JSON (:meth:`ClassMapping.save`) next to every trained probe and can be loaded instead of rebuilt.

**Clip sampling** (:func:`anticipation_frame_indices`): ``fstp = int(video_fps / 8)``, ``aframes = int(at · fps)``,
anchor ``af = int(ap · start + (1 − ap) · stop − aframes)`` (``anchoring="official"``: with ``ap = 0`` the clip ends
``at`` seconds before the **end** of the segment, a QUIRK of the official code) or ``af = int((1 − ap) · start + ap ·
stop − aframes)`` (``anchoring="standard"``: the EK protocol and paper §13.1, the clip ends ``at`` before the
**start**); indices ``arange(af − 32·fstp, af, fstp)``, negatives → 0.

**Validation order.** ``val_mode="exact"`` (corrected default) evaluates every validation segment exactly once,
also under DDP (a non-padding sampler). ``val_mode="official"`` evaluates the multiset of segments that the official
validation loop evaluates (:func:`official_val_batches`; by default that of the released runs: 64 ranks, batch 2,
2 loader workers): videos are split across ranks (``i mod world``) and then across each rank's loader workers, every
worker streams its videos' segments in start order in batches of ``batch`` (its last batch partial), the loader
interleaves the workers' batches, and each rank runs exactly ``num_segments // (world · batch)`` batches, restarting
its loader when it runs out (segments may be counted twice or not at all). The metric sums per-sample counts over
ranks, so that multiset is evaluated here with any world size and batch size, each scheduled item exactly once.

Batch (:func:`collate_anticipation`): ``video`` ``(B, 3, T, H, W)``, ``verb`` / ``noun`` / ``action`` ``(B,)``
int64 remapped ids, ``anticipation_time`` ``(B,)`` float64 seconds, ``indices`` ``(B, T)`` int64, ``path`` /
``video_id`` lists, ``segment`` ``(B,)`` int64 row index, ``skipped`` ``()`` int64.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from jepa.data.datasets import worker_rng
from jepa.data.decoding import decode_frames, probe_video
from jepa.data.errors import BadSampleError
from jepa.data.stats import SkipCounter
from jepa.data.transforms import EvalTransform, ProbeTrainTransform

log = logging.getLogger(__name__)

__all__ = [
    "AnticipationDataset",
    "AnticipationVideosDataModule",
    "ClassMapping",
    "EK100DataModule",
    "Segment",
    "anticipation_frame_indices",
    "build_class_mapping",
    "collate_anticipation",
    "ek100_video_path",
    "official_val_batches",
    "read_annotations",
]

Anchoring = Literal["official", "standard"]
ValMode = Literal["exact", "official"]
REQUIRED_COLUMNS = ("start_frame", "stop_frame", "verb_class", "noun_class")


# ------------------------------------------------------------------------------------------------ annotations
@dataclass(frozen=True)
class Segment:
    """One annotated action segment (raw dataset class ids)."""

    video_id: str
    path: str
    start_frame: int
    stop_frame: int
    verb_class: int
    noun_class: int
    verb: str | None = None
    noun: str | None = None


def ek100_video_path(base_path: str | os.PathLike[str], video_id: str, file_format: int = 0) -> str:
    """Video file of an EK100 ``video_id``: ``base/PXX/videos/ID.MP4`` (format 0) or ``base/PXX/ID.MP4`` (1)."""
    participant = video_id.split("_")[0]
    if file_format == 0:
        return os.path.join(os.fspath(base_path), participant, "videos", f"{video_id}.MP4")
    if file_format == 1:
        return os.path.join(os.fspath(base_path), participant, f"{video_id}.MP4")
    raise ValueError(f"ek100_video_path: file_format must be 0 or 1, got {file_format}")


def read_annotations(
    path: str | os.PathLike[str],
    base_path: str | os.PathLike[str] | None = None,
    file_format: int = 0,
    skip_missing: bool = True,
) -> list[Segment]:
    """Read an EK100 or "segments" annotation CSV (see the module docstring) in row order.

    Args:
        path: the CSV (header row required).
        base_path: EK100 video root (EK100 format only; default: the CSV's folder).
        file_format: EK100 path layout, 0 or 1.
        skip_missing: drop rows whose video file does not exist (one log line per missing video).

    Returns:
        The segments in CSV row order.

    Raises:
        ValueError: a required column is missing or a value is not an integer (file, line and column named).
    """
    path = Path(path)
    root = Path(base_path) if base_path is not None else path.parent
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        own_format = "video" in columns
        needed = (("video",) if own_format else ("video_id",)) + REQUIRED_COLUMNS
        missing_cols = [c for c in needed if c not in columns]
        if missing_cols:
            raise ValueError(
                f"{path}: missing column(s) {missing_cols}; an EK100 CSV needs video_id,{','.join(REQUIRED_COLUMNS)} "
                f"and a segments CSV video,{','.join(REQUIRED_COLUMNS)}; got {sorted(columns)}"
            )
        segments: list[Segment] = []
        missing_videos: set[str] = set()
        for line, row in enumerate(reader, start=2):
            try:
                start, stop = int(row["start_frame"]), int(row["stop_frame"])
                verb, noun = int(row["verb_class"]), int(row["noun_class"])
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path}:{line}: frames and classes must be integers ({error})") from error
            if own_format:
                video = row["video"]
                video_path = video if os.path.isabs(video) else os.fspath(path.parent / video)
                video_id = Path(video).stem
            else:
                video_id = row["video_id"]
                video_path = ek100_video_path(root, video_id, file_format)
            if skip_missing and not os.path.isfile(video_path):
                if video_path not in missing_videos:
                    log.warning("%s: video %s not found, skipping its segments", path, video_path)
                    missing_videos.add(video_path)
                continue
            segments.append(
                Segment(video_id, video_path, start, stop, verb, noun, row.get("verb") or None, row.get("noun") or None)
            )
    return segments


# ------------------------------------------------------------------------------------------------ class mapping
@dataclass
class ClassMapping:
    """Raw dataset class ids → contiguous head ids, and class names by raw id.

    Attributes:
        verbs, nouns: raw id → new id.
        actions: raw ``(verb, noun)`` → new id.
        verb_names, noun_names: raw id → name (may be empty).
    """

    verbs: dict[int, int]
    nouns: dict[int, int]
    actions: dict[tuple[int, int], int]
    verb_names: dict[int, str] = field(default_factory=dict)
    noun_names: dict[int, str] = field(default_factory=dict)

    @property
    def num_verbs(self) -> int:
        return len(self.verbs)

    @property
    def num_nouns(self) -> int:
        return len(self.nouns)

    @property
    def num_actions(self) -> int:
        return len(self.actions)

    def action_pairs(self) -> list[tuple[int, int]]:
        """Raw ``(verb, noun)`` of each new action id."""
        pairs = [(0, 0)] * len(self.actions)
        for pair, index in self.actions.items():
            pairs[index] = pair
        return pairs

    def verb_name(self, raw: int) -> str:
        return self.verb_names.get(raw, str(raw))

    def noun_name(self, raw: int) -> str:
        return self.noun_names.get(raw, str(raw))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able content (lists ordered by new id; names keyed by raw id)."""
        return {
            "format": "jepa-anticipation-classes",
            "version": 1,
            "verbs": [raw for raw, _ in sorted(self.verbs.items(), key=lambda kv: kv[1])],
            "nouns": [raw for raw, _ in sorted(self.nouns.items(), key=lambda kv: kv[1])],
            "actions": [list(pair) for pair in self.action_pairs()],
            "verb_names": {str(k): v for k, v in sorted(self.verb_names.items())},
            "noun_names": {str(k): v for k, v in sorted(self.noun_names.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassMapping:
        if data.get("format") != "jepa-anticipation-classes":
            raise ValueError(f"class mapping: expected format 'jepa-anticipation-classes', got {data.get('format')!r}")
        return cls(
            verbs={int(raw): i for i, raw in enumerate(data["verbs"])},
            nouns={int(raw): i for i, raw in enumerate(data["nouns"])},
            actions={(int(v), int(n)): i for i, (v, n) in enumerate(data["actions"])},
            verb_names={int(k): str(v) for k, v in data.get("verb_names", {}).items()},
            noun_names={int(k): str(v) for k, v in data.get("noun_names", {}).items()},
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the mapping as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClassMapping:
        """Read a mapping written by :meth:`save`."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: not a class-mapping file ({error})") from error


def build_class_mapping(train: Sequence[Segment], names: Iterable[Segment] = ()) -> ClassMapping:
    """The official remapping from the training segments (CPython set order; see the module docstring).

    Args:
        train: training segments in CSV row order.
        names: segments whose ``verb`` / ``noun`` strings name the classes (default ``train``; first name wins).
    """
    actions = set(zip([s.verb_class for s in train], [s.noun_class for s in train], strict=True))
    verbs = {v for v, _ in actions}
    nouns = {n for _, n in actions}
    mapping = ClassMapping(
        verbs={v: i for i, v in enumerate(verbs)},
        nouns={n: i for i, n in enumerate(nouns)},
        actions={a: i for i, a in enumerate(actions)},
    )
    for segment in (*train, *names):
        if segment.verb:
            mapping.verb_names.setdefault(segment.verb_class, segment.verb)
        if segment.noun:
            mapping.noun_names.setdefault(segment.noun_class, segment.noun)
    return mapping


def read_class_names(path: str | os.PathLike[str]) -> dict[int, str]:
    """Names from an ``EPIC_100_{verb,noun}_classes.csv``-style file (columns ``id`` and ``key``)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"id", "key"} <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: class-name file needs columns 'id' and 'key', got {reader.fieldnames}")
        return {int(row["id"]): row["key"] for row in reader}


# ------------------------------------------------------------------------------------------------ sampling
def anticipation_frame_indices(
    start_frame: int,
    stop_frame: int,
    video_fps: float,
    anticipation_time: float,
    anticipation_point: float,
    frames_per_clip: int = 32,
    frames_per_second: int = 8,
    anchoring: Anchoring = "official",
    num_frames: int | None = None,
) -> np.ndarray:
    """Frame indices of the observed clip before an action segment (anticipation.md §3).

    Args:
        start_frame, stop_frame: the segment (video frame indices).
        video_fps: the video's frame rate (``fstp = int(video_fps / frames_per_second)``, at least 1).
        anticipation_time: seconds between the end of the clip and the anchor point.
        anticipation_point: ``ap`` in [0, 1] (0 = the official / standard anchor, see ``anchoring``).
        frames_per_clip: frames in the clip (32).
        frames_per_second: sampling rate of the clip (8).
        anchoring: ``"official"`` ``af = int(ap·start + (1 − ap)·stop − aframes)`` or ``"standard"``
            ``af = int((1 − ap)·start + ap·stop − aframes)``.
        num_frames: if given, indices past the last frame are clamped to ``num_frames − 1``.

    Returns:
        ``(frames_per_clip,)`` int64 indices ``arange(af − frames_per_clip·fstp, af, fstp)``, negatives set to 0.
    """
    if anchoring not in ("official", "standard"):
        raise ValueError(f"anticipation_frame_indices: anchoring must be 'official' or 'standard', got {anchoring!r}")
    fstp = max(1, int(video_fps / frames_per_second))  # official int(fps / 8); 0 (fps < 8) would not run there
    nframes = frames_per_clip * fstp
    aframes = int(anticipation_time * video_fps)
    ap = anticipation_point
    if anchoring == "official":
        af = int(ap * start_frame + (1 - ap) * stop_frame - aframes)
    else:
        af = int((1 - ap) * start_frame + ap * stop_frame - aframes)
    indices = np.arange(af - nframes, af, fstp, dtype=np.int64)  # (frames_per_clip,)
    indices = np.maximum(indices, 0)  # before the video start: repeat frame 0
    if num_frames is not None:
        indices = np.minimum(indices, num_frames - 1)
    return indices


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    low, high = float(bounds[0]), float(bounds[-1])
    return low if low == high else float(rng.uniform(low, high))


# ------------------------------------------------------------------------------------------------ dataset
class AnticipationDataset(Dataset):
    """One anticipation clip per annotated segment.

    Args:
        segments: the segments (raw classes).
        mapping: class remapping; segments whose action is not in it are dropped (official val filtering).
        transform: ``(T, H, W, 3)`` uint8 → ``(3, T, h, w)`` or a 1-element list of views.
        anticipation_time, anticipation_point: ``[low, high]`` ranges drawn uniformly per sample (equal bounds for
            a fixed value).
        frames_per_clip, frames_per_second, anchoring: see :func:`anticipation_frame_indices`.
        video_fps: frame rate of every video (None: read from each file, cached).
        seed: seeds the draws (mixed with the DataLoader worker seed; with ``deterministic`` only with the index).
        deterministic: draw from a generator seeded by ``(seed, index)`` (evaluation: reproducible clips).
    """

    def __init__(
        self,
        segments: Sequence[Segment],
        mapping: ClassMapping,
        transform: Any,
        anticipation_time: Sequence[float] = (1.0, 1.0),
        anticipation_point: Sequence[float] = (0.0, 0.0),
        frames_per_clip: int = 32,
        frames_per_second: int = 8,
        anchoring: Anchoring = "official",
        video_fps: float | None = None,
        seed: int = 0,
        deterministic: bool = False,
        name: str = "anticipation",
    ) -> None:
        kept = [s for s in segments if (s.verb_class, s.noun_class) in mapping.actions]
        if len(kept) < len(segments):
            log.info("%s: dropped %d segments whose action is not a training action", name, len(segments) - len(kept))
        self.segments = kept
        self.mapping = mapping
        self.transform = transform
        self.anticipation_time = tuple(anticipation_time)
        self.anticipation_point = tuple(anticipation_point)
        self.frames_per_clip = frames_per_clip
        self.frames_per_second = frames_per_second
        self.anchoring = anchoring
        self.video_fps = video_fps
        self.seed = seed
        self.deterministic = deterministic
        self.skips = SkipCounter(name)
        self._info: dict[str, tuple[float, int | None]] = {}

    def __len__(self) -> int:
        return len(self.segments)

    def video_ids(self) -> list[str]:
        """Video of each segment (for the official per-video validation order)."""
        return [s.path for s in self.segments]

    def _fps_and_length(self, path: str) -> tuple[float, int | None]:
        if path not in self._info:
            if self.video_fps is not None:
                self._info[path] = (float(self.video_fps), None)
            else:
                info = probe_video(path)
                self._info[path] = (info.fps, info.num_frames)
        return self._info[path]

    def sample(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        """Decode and transform the clip of segment ``index``; raises ``BadSampleError`` for unusable videos."""
        seg = self.segments[index]
        fps, length = self._fps_and_length(seg.path)
        at = _uniform(rng, self.anticipation_time)
        ap = _uniform(rng, self.anticipation_point)
        indices = anticipation_frame_indices(
            seg.start_frame, seg.stop_frame, fps, at, ap, self.frames_per_clip, self.frames_per_second,
            self.anchoring, length,
        )  # fmt: skip
        frames = decode_frames(seg.path, indices)  # (T, H, W, 3) uint8
        out = self.transform(frames, rng=rng)
        clip = out[0] if isinstance(out, (list, tuple)) else out  # (3, T, h, w)
        return {
            "video": clip,
            "verb": self.mapping.verbs[seg.verb_class],
            "noun": self.mapping.nouns[seg.noun_class],
            "action": self.mapping.actions[(seg.verb_class, seg.noun_class)],
            "anticipation_time": at,
            "indices": torch.from_numpy(indices),
            "path": seg.path,
            "video_id": seg.video_id,
            "segment": index,
        }

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        rng = np.random.default_rng([self.seed, int(index)]) if self.deterministic else worker_rng(self.seed, index)
        try:
            sample = self.sample(int(index), rng)
        except BadSampleError as error:  # official: decode errors skip the segment
            self.skips.record(error.path or self.segments[index].path, error.reason)
            return None
        sample["skipped"] = self.skips.take_delta()
        return sample


def collate_anticipation(samples: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack the samples that loaded (``None`` = skipped segment); see the module docstring for the keys."""
    kept = [s for s in samples if s is not None]
    skipped = len(samples) - len(kept) + sum(int(s.get("skipped", 0)) for s in kept)
    if not kept:
        return {"video": torch.empty(0), "path": [], "skipped": torch.tensor(skipped)}
    return {
        "video": torch.stack([s["video"] for s in kept]),  # (B, 3, T, H, W)
        "verb": torch.as_tensor([s["verb"] for s in kept], dtype=torch.int64),
        "noun": torch.as_tensor([s["noun"] for s in kept], dtype=torch.int64),
        "action": torch.as_tensor([s["action"] for s in kept], dtype=torch.int64),
        # float64 as the official default_collate of Python floats: steps = int(at · 8 / 2) truncates the same way
        "anticipation_time": torch.as_tensor([s["anticipation_time"] for s in kept], dtype=torch.float64),
        "indices": torch.stack([s["indices"] for s in kept]),  # (B, T)
        "path": [s["path"] for s in kept],
        "video_id": [s["video_id"] for s in kept],
        "segment": torch.as_tensor([s["segment"] for s in kept], dtype=torch.int64),
        "skipped": torch.tensor(skipped, dtype=torch.int64),
    }


# ------------------------------------------------------------------------------------------------ samplers
class ExactOnceSampler(DistributedSampler):
    """Every index exactly once across ranks (rank ``r`` gets ``r, r + world, …``; no padding, no shuffling).

    A ``DistributedSampler`` subclass so Lightning keeps it instead of installing its padding sampler.
    """

    def __init__(self, dataset: Dataset, num_replicas: int | None = None, rank: int | None = None) -> None:
        num_replicas, rank = _world(num_replicas, rank)
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(self.rank, len(dataset), self.num_replicas))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.num_samples


def official_val_batches(
    segments: Sequence[Segment], world_size: int, rank: int, batch_size: int, num_workers: int
) -> list[list[int]]:
    """The batches (indices into ``segments``) that rank ``rank`` evaluates in the official validation loop.

    Official pipeline (``epickitchens.py``: ``build_annotations``, ``get_video_wds_dataset``, ``make_webvid``;
    ``eval.py``: ``validate``): the videos, in first-appearance order, go to rank ``i mod world_size``; a rank's
    videos go to its loader workers in turn (``wds.split_by_worker``); each worker streams its videos' segments
    sorted by start frame (pandas ``sort_values``, numpy quicksort) in batches of ``batch_size``, its last batch
    partial; the loader returns the workers' batches round-robin (a finished worker drops out); the rank runs
    exactly ``len(segments) // (world_size · batch_size)`` iterations, restarting the loader when it runs out.

    Args:
        segments: the validation segments (after the class filtering), in CSV row order.
        world_size, rank: the official data-parallel layout (released runs: 64 ranks).
        batch_size: per-rank batch (released runs: 2).
        num_workers: loader workers per rank (released configs: 2; 0 and 1 both mean one stream).

    Returns:
        The rank's batches in order; ``[]`` if the rank has no video (the official loop would fail there).
    """
    if world_size < 1 or not 0 <= rank < world_size or batch_size < 1 or num_workers < 0:
        raise ValueError(
            f"official_val_batches: need world_size >= 1, 0 <= rank < world_size, batch_size >= 1, num_workers >= 0; "
            f"got world_size={world_size}, rank={rank}, batch_size={batch_size}, num_workers={num_workers}"
        )
    videos: dict[str, list[int]] = {}
    for index, segment in enumerate(segments):
        videos.setdefault(segment.path, []).append(index)
    mine = list(videos.values())[rank::world_size]  # split_by_node
    workers = max(1, num_workers)
    streams: list[list[list[int]]] = []  # per worker: its batches
    for worker in range(workers):
        stream: list[int] = []
        for ids in mine[worker::workers]:  # split_by_worker
            starts = np.asarray([segments[i].start_frame for i in ids], dtype=np.int64)
            stream += [ids[j] for j in np.argsort(starts, kind="quicksort")]  # sort_values(by="start_frame")
        streams.append([stream[i : i + batch_size] for i in range(0, len(stream), batch_size)])  # partial=True
    loader_order = [b[r] for r in range(max((len(b) for b in streams), default=0)) for b in streams if r < len(b)]
    iterations = len(segments) // (world_size * batch_size)
    if not loader_order:
        return []
    return [loader_order[i % len(loader_order)] for i in range(iterations)]  # restart the loader when it runs out


class OfficialValSampler(DistributedSampler):
    """Indices of the official validation multiset (:func:`official_val_batches` over all official ranks).

    The official metric sums per-sample counts over ranks, so the union of the official ranks' batches, each item
    once, gives the official numbers with any world size: this (actual) rank gets every ``num_replicas``-th item.

    Args:
        dataset: the validation dataset.
        world_size, batch_size, num_workers: the official run's layout (released: 64, 2, 2).
        num_replicas, rank: this run's DDP layout (default: from ``torch.distributed``).
    """

    def __init__(
        self,
        dataset: AnticipationDataset,
        world_size: int = 64,
        batch_size: int = 2,
        num_workers: int = 2,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        num_replicas, rank = _world(num_replicas, rank)
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        schedule = [
            index
            for official_rank in range(world_size)
            for batch in official_val_batches(dataset.segments, world_size, official_rank, batch_size, num_workers)
            for index in batch
        ]  # the official multiset, official-rank-major
        if not schedule:
            log.warning(
                "official validation: %d segments // (world %d x batch %d) = 0 iterations, nothing is evaluated",
                len(dataset), world_size, batch_size,
            )  # fmt: skip
        self.schedule = schedule[self.rank :: self.num_replicas]
        self.num_samples = len(self.schedule)

    def __iter__(self) -> Iterator[int]:
        return iter(self.schedule)

    def __len__(self) -> int:
        return self.num_samples


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    if num_replicas is None or rank is None:
        dist = torch.distributed
        initialised = dist.is_available() and dist.is_initialized()
        num_replicas = num_replicas if num_replicas is not None else (dist.get_world_size() if initialised else 1)
        rank = rank if rank is not None else (dist.get_rank() if initialised else 0)
    return num_replicas, rank


# ------------------------------------------------------------------------------------------------ data modules
class EK100DataModule(pl.LightningDataModule):
    """EK100 (or your own "segments" CSVs) for action anticipation probes.

    Args:
        train, val: annotation CSVs (see the module docstring); ``val`` only for ``jepa validate`` (the class
            mapping still needs ``train`` unless ``class_mapping`` is given).
        base_path: EK100 video root (default: each CSV's folder). file_format: EK100 path layout 0 or 1.
        class_mapping: a mapping JSON (:meth:`ClassMapping.save`) used instead of rebuilding it from ``train``.
        verb_classes, noun_classes: optional ``EPIC_100_{verb,noun}_classes.csv`` for class names.
        frames_per_clip, frames_per_second: 32 frames at 8 fps (official).
        train_anticipation_time, train_anticipation_point: uniform ranges (official [0.25, 1.75] s, [0.0, 0.25]).
        val_anticipation_time, val_anticipation_point: official 1.0 s and 0.0.
        anchoring: ``"official"`` (the QUIRK: clip ends ``at`` before the segment END at ``ap = 0``) or
            ``"standard"`` (ends ``at`` before the segment START).
        val_mode: ``"exact"`` every val segment once, or ``"official"`` (see the module docstring).
        official_world_size, official_batch_size, official_num_workers: the official run whose validation multiset
            ``val_mode="official"`` reproduces (released configs: 8 nodes x 8 GPUs = 64 ranks, batch 2, 2 workers).
        video_fps: frame rate of all videos (None: read from each file).
        crop_size: 256 (ViT-L/H/g) or 384.
        hflip, auto_augment, reprob: training augmentation (official: flip on, RandAugment, erasing 0.25).
        batch_size, num_workers, seed: DataLoader settings.
    """

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        base_path: str | None = None,
        file_format: int = 0,
        class_mapping: str | None = None,
        verb_classes: str | None = None,
        noun_classes: str | None = None,
        frames_per_clip: int = 32,
        frames_per_second: int = 8,
        train_anticipation_time: tuple[float, float] = (0.25, 1.75),
        train_anticipation_point: tuple[float, float] = (0.0, 0.25),
        val_anticipation_time: tuple[float, float] = (1.0, 1.0),
        val_anticipation_point: tuple[float, float] = (0.0, 0.0),
        anchoring: Anchoring = "official",
        val_mode: ValMode = "exact",
        official_world_size: int = 64,
        official_batch_size: int = 2,
        official_num_workers: int = 2,
        video_fps: float | None = None,
        crop_size: int = 256,
        hflip: bool = True,
        auto_augment: str | None = "rand-m7-n4-mstd0.5-inc1",
        reprob: float = 0.25,
        batch_size: int = 2,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if val_mode not in ("exact", "official"):
            raise ValueError(f"EK100DataModule: val_mode must be 'exact' or 'official', got {val_mode!r}")
        if anchoring not in ("official", "standard"):
            raise ValueError(f"EK100DataModule: anchoring must be 'official' or 'standard', got {anchoring!r}")
        self.paths = {"train": train, "val": val}
        self.base_path = base_path
        self.file_format = file_format
        self.class_mapping_path = class_mapping
        self.verb_classes = verb_classes
        self.noun_classes = noun_classes
        self.frames_per_clip = frames_per_clip
        self.frames_per_second = frames_per_second
        self.ranges = {
            "train": (tuple(train_anticipation_time), tuple(train_anticipation_point)),
            "val": (tuple(val_anticipation_time), tuple(val_anticipation_point)),
        }
        self.anchoring = anchoring
        self.val_mode = val_mode
        self.official_layout = (official_world_size, official_batch_size, official_num_workers)
        self.video_fps = video_fps
        self.crop_size = crop_size
        self.hflip = hflip
        self.auto_augment = auto_augment
        self.reprob = reprob
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self._segments: dict[str, list[Segment]] = {}
        self._mapping: ClassMapping | None = None
        self.datasets: dict[str, AnticipationDataset] = {}

    def segments(self, split: str) -> list[Segment]:
        if split not in self._segments:
            path = self.paths[split]
            if path is None:
                raise ValueError(f"EK100DataModule: no {split!r} annotations configured (--data.{split})")
            self._segments[split] = read_annotations(path, self.base_path, self.file_format)
        return self._segments[split]

    @property
    def class_mapping(self) -> ClassMapping:
        """The class mapping (loaded from ``class_mapping`` or built from the training annotations)."""
        if self._mapping is None:
            if self.class_mapping_path is not None:
                self._mapping = ClassMapping.load(self.class_mapping_path)
            elif self.paths["train"] is not None:
                # Official: the classes come from EVERY train row, also those of videos missing here.
                rows = read_annotations(self.paths["train"], self.base_path, self.file_format, skip_missing=False)
                names = self.segments("val") if self.paths["val"] is not None else ()
                self._mapping = build_class_mapping(rows, names)
            else:
                raise ValueError("EK100DataModule: the class mapping needs `train` annotations or `class_mapping`")
            if self.verb_classes:
                self._mapping.verb_names.update(read_class_names(self.verb_classes))
            if self.noun_classes:
                self._mapping.noun_names.update(read_class_names(self.noun_classes))
        return self._mapping

    def build_dataset(self, split: str) -> AnticipationDataset:
        if split == "train":
            transform: Any = ProbeTrainTransform(
                crop_size=self.crop_size, hflip=self.hflip, auto_augment=self.auto_augment, reprob=self.reprob
            )
        else:
            transform = EvalTransform(crop_size=self.crop_size, num_views=1)
        at, ap = self.ranges[split]
        return AnticipationDataset(
            self.segments(split), self.class_mapping, transform, at, ap, self.frames_per_clip,
            self.frames_per_second, self.anchoring, self.video_fps, seed=self.seed,
            deterministic=split != "train", name=f"{split} anticipation",
        )  # fmt: skip

    def setup(self, stage: str | None = None) -> None:
        splits = ["train", "val"] if stage in (None, "fit") else ["val"]
        for split in splits:
            if self.paths[split] is not None and split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def _dataset(self, split: str) -> AnticipationDataset:
        if split not in self.datasets:
            self.datasets[split] = self.build_dataset(split)
        return self.datasets[split]

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
            collate_fn=collate_anticipation, drop_last=False, generator=torch.Generator().manual_seed(self.seed),
        )  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        dataset = self._dataset("val")
        if self.val_mode == "official":
            sampler: DistributedSampler = OfficialValSampler(dataset, *self.official_layout)
        else:
            sampler = ExactOnceSampler(dataset)
        return DataLoader(
            dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
            collate_fn=collate_anticipation,
        )  # fmt: skip


class AnticipationVideosDataset(Dataset):
    """Clips ending at given time points of given videos (``jepa predict``).

    The clip covers the ``frames_per_clip`` frames (at ``frames_per_second``) before ``time`` seconds; the model
    anticipates the action starting ``anticipation_time`` seconds after ``time``.
    """

    def __init__(
        self,
        videos: Sequence[str],
        times: Sequence[float],
        transform: EvalTransform,
        anticipation_time: float = 1.0,
        frames_per_clip: int = 32,
        frames_per_second: int = 8,
    ) -> None:
        if len(videos) != len(times):
            raise ValueError(f"AnticipationVideosDataset: {len(videos)} videos but {len(times)} time points")
        self.videos = list(videos)
        self.times = [float(t) for t in times]
        self.transform = transform
        self.anticipation_time = anticipation_time
        self.frames_per_clip = frames_per_clip
        self.frames_per_second = frames_per_second

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        path, time = self.videos[index], self.times[index]
        try:
            info = probe_video(path)
            end = int(math.floor(time * info.fps))
            # Anchor = the time point itself: the standard anchoring with the anticipation time already counted.
            indices = anticipation_frame_indices(
                end, end, info.fps, 0.0, 0.0, self.frames_per_clip, self.frames_per_second, "standard", info.num_frames
            )
            clip = self.transform(decode_frames(path, indices))[0]  # (3, T, h, w)
        except BadSampleError as error:
            log.warning("skipping %s", error)
            return None
        return {
            "video": clip,
            "anticipation_time": self.anticipation_time,
            "indices": torch.from_numpy(indices),
            "path": path,
            "video_id": Path(path).stem,
            "segment": index,
            "time": time,
            "verb": -1,
            "noun": -1,
            "action": -1,
        }


def _collate_predict(samples: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    batch = collate_anticipation(samples)
    kept = [s for s in samples if s is not None]
    batch["time"] = [s["time"] for s in kept]
    for key in ("verb", "noun", "action"):
        batch.pop(key, None)
    return batch


class AnticipationVideosDataModule(pl.LightningDataModule):
    """``jepa predict`` inputs: videos and the time points to anticipate from.

    Args:
        videos: video paths (one per query; repeat a path for several time points).
        times: seconds; the observed clip ends there.
        anticipation_time: seconds ahead to anticipate (1.0 as in training/validation).
        frames_per_clip, frames_per_second, crop_size: as :class:`EK100DataModule`.
        batch_size, num_workers: DataLoader settings.
    """

    def __init__(
        self,
        videos: list[str],
        times: list[float],
        anticipation_time: float = 1.0,
        frames_per_clip: int = 32,
        frames_per_second: int = 8,
        crop_size: int = 256,
        batch_size: int = 1,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.dataset = AnticipationVideosDataset(
            videos, times, EvalTransform(crop_size=crop_size), anticipation_time, frames_per_clip, frames_per_second
        )
        self.batch_size = batch_size
        self.num_workers = num_workers

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=_collate_predict
        )
