"""WebDataset tar shards of ORIGINAL compressed videos: writer and a streaming, DDP- and worker-aware reader.

Shard layout: `<prefix>-000000.tar`, … each sample is two members with the same key (`%08d` running index):
`<key>.<ext>` (the untouched file bytes; ext `mp4`, `webm`, `mkv`, `avi`, `mov`, `jpg`, `jpeg` or `png`) and
`<key>.json` (`label, fps, num_frames, duration, width, height, rotation, is_image, source, ext`). Beside the shards,
`sizes.json` maps each shard file name to its sample count.

Reader (`ShardDataset`): only `json` members are parsed (json.loads) and media members are passed as raw bytes to
`load_clips`; nothing is ever unpickled and other members are ignored. Splitting of one epoch (non-resampled mode)
over G = world_size × num_workers readers, global reader id g = rank · num_workers + worker_id, after a per-epoch
shuffle of the shard list (same on all ranks):

- S ≥ G shards: reader g reads shards `g, g + G, g + 2G, …` (whole shards);
- S < G shards: reader g reads shard `g mod S` and keeps the samples whose position p in that shard satisfies
  `p mod n == g // S`, n = number of readers sharing the shard (sample-level split).

Either way each sample is read by exactly one reader per epoch and no reader is without data (as long as every
shard holds at least n samples). Ranks can get different sample counts when shard sizes differ: for DDP training
use `resampled=True` with `epoch_size` (shards drawn at random with replacement per reader, exactly `epoch_size`
samples per rank per epoch), which is also what the official infinite loaders do.

Epochs: `set_epoch(e)` fixes the shuffles of the next `__iter__`; each further `__iter__` of the same object (e.g. in
a persistent worker) advances the epoch by one. `EpochDataLoader` calls `set_epoch` for you.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset
from webdataset.gopen import gopen
from webdataset.shardlists import expand_urls
from webdataset.tariterators import base_plus_ext
from webdataset.writer import TarWriter

from jepa.data.clips import load_clips
from jepa.data.csv_list import read_sample_list
from jepa.data.datasets import Transform, apply_transform
from jepa.data.decoding import probe_video
from jepa.data.errors import BadSampleError
from jepa.data.image_folder import scan_image_folder
from jepa.data.sampling import ClipSampling
from jepa.data.stats import SkipCounter, logger

__all__ = [
    "MEDIA_EXTENSIONS",
    "EpochDataLoader",
    "ShardDataset",
    "ShardWriteResult",
    "assign_shards",
    "expand_shard_urls",
    "list_media_inputs",
    "write_shards",
]

VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "avi", "mov")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png")
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS


# ----------------------------------------------------------------------------------------------------------- writer
@dataclass
class ShardWriteResult:
    """What `write_shards` produced: shard paths, per-shard counts, brace pattern, skipped inputs."""

    shards: list[str]
    sizes: dict[str, int]
    pattern: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def num_samples(self) -> int:
        return sum(self.sizes.values())


def list_media_inputs(input: str | os.PathLike) -> list[tuple[str, int]]:
    """Samples of a CSV / npy list, or of a folder.

    A folder with sub-folders is read as `root/<class>/<file>` (classes sorted, labels 0..C-1, videos and images);
    a folder without sub-folders gives all its media files with label 0.
    """
    input = os.fspath(input)
    if os.path.isfile(input):
        return read_sample_list(input)
    if not os.path.isdir(input):
        raise FileNotFoundError(f"shards input {input!r}: expected a CSV / npy list or a folder")
    subdirs = sorted(d.name for d in os.scandir(input) if d.is_dir())
    if not subdirs:
        files = sorted(e.path for e in os.scandir(input) if e.is_file() and _ext(e.name) in MEDIA_EXTENSIONS)
        return [(os.path.abspath(p), 0) for p in files]
    out = []
    for label, name in enumerate(subdirs):
        for dirpath, _, files in sorted(os.walk(os.path.join(input, name))):
            out.extend(
                (os.path.abspath(os.path.join(dirpath, f)), label) for f in sorted(files) if _ext(f) in MEDIA_EXTENSIONS
            )
    if not out:
        # an image folder gives the same result; scan it for its clearer errors
        scan_image_folder(input)
    return out


def _ext(name: str) -> str:
    return os.path.splitext(name)[1].lower().lstrip(".")


def write_shards(
    input: str | os.PathLike | Sequence[tuple[str, int]],
    output_dir: str | os.PathLike,
    *,
    max_size_mb: float = 1024.0,
    max_count: int = 10000,
    prefix: str = "shard",
) -> ShardWriteResult:
    """Pack the original media files of `input` into tar shards with a metadata JSON per sample.

    Args:
        input: CSV / npy list, folder (see `list_media_inputs`) or a parsed `[(path, label), ...]`.
        output_dir: created if needed; receives `<prefix>-%06d.tar` and `sizes.json`.
        max_size_mb: start a new shard before the current one would exceed this size (MiB of member data).
        max_count: at most this many samples per shard.
        prefix: shard file name prefix.

    Bad inputs (missing, zero-byte, not a video, undecodable header) are skipped, logged and listed in the result.
    Tar members get mtime 0 so identical inputs give identical shards.
    """
    samples = list_media_inputs(input) if isinstance(input, (str, os.PathLike)) else list(input)
    out_dir = os.path.abspath(os.fspath(output_dir))
    os.makedirs(out_dir, exist_ok=True)
    max_bytes = max_size_mb * 2**20
    shards: list[str] = []
    sizes: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    writer: TarWriter | None = None
    count = size = 0
    key = 0
    try:
        for path, label in samples:
            ext = _ext(path)
            try:
                if ext not in MEDIA_EXTENSIONS:
                    raise BadSampleError(path, f"unsupported extension {ext!r}; expected one of {MEDIA_EXTENSIONS}")
                if not os.path.isfile(path):
                    raise BadSampleError(path, "file does not exist")
                with open(path, "rb") as f:
                    data = f.read()
                info = probe_video(path)
            except BadSampleError as e:
                logger.warning("write_shards: skipping %s: %s", path, e.reason)
                skipped.append((path, e.reason))
                continue
            meta = {
                "label": int(label),
                "fps": float(info.fps),
                "num_frames": int(info.num_frames),
                "duration": float(info.duration),
                "width": int(info.width),
                "height": int(info.height),
                "rotation": int(info.rotation),
                "is_image": bool(info.is_image),
                "source": path,
                "ext": ext,
            }
            member = json.dumps(meta).encode()
            new_size = len(data) + len(member)
            if writer is not None and (count >= max_count or (count > 0 and size + new_size > max_bytes)):
                writer.close()
                writer = None
            if writer is None:
                name = f"{prefix}-{len(shards):06d}.tar"
                shards.append(os.path.join(out_dir, name))
                sizes[name] = 0
                writer = TarWriter(shards[-1], encoder=False, mtime=0.0)
                count = size = 0
            writer.write({"__key__": f"{key:08d}", ext: data, "json": member})
            key += 1
            count += 1
            size += new_size
            sizes[os.path.basename(shards[-1])] += 1
    finally:
        if writer is not None:
            writer.close()
    with open(os.path.join(out_dir, "sizes.json"), "w") as f:
        json.dump(sizes, f, indent=1)
    last = max(len(shards) - 1, 0)
    pattern = os.path.join(out_dir, f"{prefix}-{{{0:06d}..{last:06d}}}.tar")
    return ShardWriteResult(shards=shards, sizes=sizes, pattern=pattern, skipped=skipped)


# ----------------------------------------------------------------------------------------------------------- reader
def expand_shard_urls(urls: str | Sequence[str]) -> list[str]:
    """Expand brace patterns (`shard-{000000..000009}.tar`) and `::`-joined lists; `pipe:` URLs pass through."""
    items = [urls] if isinstance(urls, str) else list(urls)
    out: list[str] = []
    for item in items:
        out.extend(expand_urls(os.fspath(item)))
    if not out:
        raise ValueError(f"no shard URLs in {urls!r}")
    return out


def assign_shards(num_shards: int, reader: int, num_readers: int) -> list[tuple[int, int, int]]:
    """Which shards (and which samples of them) reader `reader` of `num_readers` reads in one epoch.

    Returns `[(shard index, modulus n, remainder k), ...]`: keep the samples at positions p with `p % n == k`.
    """
    if num_shards >= num_readers:
        return [(s, 1, 0) for s in range(reader, num_shards, num_readers)]
    shard = reader % num_shards
    n = len(range(shard, num_readers, num_shards))
    return [(shard, n, reader // num_shards)]


def _dist_rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return rank or 0, world_size or 1


class EpochStream(IterableDataset):
    """An iterable dataset read as one of ``world × workers`` readers, re-shuffled per epoch.

    Subclasses set ``rank``, ``world_size``, ``epoch`` and ``_iters_since_set`` and implement
    ``iter_reader(rank, world, worker_id, num_workers, epoch)``. Each ``iter()`` without an intervening
    :meth:`set_epoch` counts as the next epoch, so loaders that never call ``set_epoch`` still re-shuffle.
    """

    rank: int | None
    world_size: int | None
    epoch: int
    _iters_since_set: int

    def set_epoch(self, epoch: int) -> None:
        """Use `epoch` for the shuffles of the next iteration."""
        self.epoch, self._iters_since_set = int(epoch), 0

    def iter_reader(
        self, rank: int, world: int, worker_id: int, num_workers: int, epoch: int
    ) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch = self.epoch + self._iters_since_set
        self._iters_since_set += 1
        rank, world = _dist_rank_world(self.rank, self.world_size)
        info = torch.utils.data.get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.iter_reader(rank, world, worker_id, num_workers, epoch)


class ShardDataset(EpochStream):
    """Stream clips from WebDataset shards written by `write_shards`; yields the sample dicts of `datasets.py`.

    Args:
        urls: local paths, brace patterns, `pipe:` commands (anything `webdataset.gopen` opens), or a list of them.
        sampling: clip sampling rule; `transform` as for `VideoClipDataset`.
        shuffle_buffer: samples kept in a per-reader shuffle buffer (0 = stream order).
        shuffle_shards: shuffle the shard order every epoch (seed + epoch; identical on all ranks).
        seed: base of every random choice (shard order, buffer, clip positions).
        resampled: draw shards at random with replacement forever (per reader seed) instead of one pass.
        epoch_size: samples per rank per epoch in resampled mode (None: infinite), split over the rank's workers.
        rank, world_size: override `torch.distributed` (tests, custom launchers).
        dataset: value of the `dataset` field of the samples (mixture source index).
        name: prefix of skip warnings.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        sampling: ClipSampling,
        transform: Transform | None = None,
        *,
        shuffle_buffer: int = 0,
        shuffle_shards: bool = True,
        seed: int = 0,
        resampled: bool = False,
        epoch_size: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        decode_threads: int = 0,
        dataset: int = 0,
        name: str = "ShardDataset",
    ) -> None:
        super().__init__()
        self.urls = expand_shard_urls(urls)
        self.sampling = sampling
        self.transform = transform
        self.shuffle_buffer = shuffle_buffer
        self.shuffle_shards = shuffle_shards
        self.seed = seed
        self.resampled = resampled
        if epoch_size is not None and not resampled:
            raise ValueError("ShardDataset: epoch_size needs resampled=True (a single pass reads every sample once)")
        self.epoch_size = epoch_size
        self.rank, self.world_size = rank, world_size
        self.decode_threads = decode_threads
        self.dataset = dataset
        self.skips = SkipCounter(name)
        self.epoch = 0
        self._iters_since_set = 0

    def __len__(self) -> int:
        if self.epoch_size is None:
            raise TypeError("ShardDataset has a length only in resampled mode with epoch_size")
        return self.epoch_size

    # -- raw samples of one shard
    def _raw_samples(self, url: str) -> Iterator[tuple[str, dict[str, bytes]]]:
        """Yield `(key, {ext: bytes})` in shard order; a corrupt/truncated tar stops the shard (counted once)."""
        current: dict[str, bytes] = {}
        key = None
        try:
            stream = gopen(url, "rb")
        except Exception as e:  # unreadable URL: skip the shard, never crash the epoch
            self.skips.record(url, f"cannot open shard: {e}")
            return
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for info in tar:
                    if not info.isreg():
                        continue
                    prefix, suffix = base_plus_ext(info.name)
                    if prefix is None:
                        continue
                    data = tar.extractfile(info).read()
                    if len(data) != info.size:
                        raise tarfile.ReadError(f"member {info.name} truncated")
                    if key is not None and prefix != key:
                        yield key, current
                        current = {}
                    key = prefix
                    current[suffix.lower()] = data
            if key is not None:
                yield key, current
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            self.skips.record(url, f"corrupt tar: {e}")
        finally:
            stream.close()

    def _decode(self, url: str, key: str, members: dict[str, bytes], rng: np.random.Generator) -> dict[str, Any]:
        where = f"{url}:{key}"
        if "json" not in members:
            raise BadSampleError(where, "no .json metadata member")
        try:
            meta = json.loads(members["json"].decode())
            label = int(meta.get("label", 0))
        except (UnicodeDecodeError, ValueError, AttributeError, TypeError) as e:
            raise BadSampleError(where, f"invalid json member: {e}") from None
        media = next((ext for ext in MEDIA_EXTENSIONS if ext in members), None)
        if media is None:
            raise BadSampleError(where, f"no media member; expected one of {MEDIA_EXTENSIONS}, got {sorted(members)}")
        try:
            sample = load_clips(members[media], self.sampling, rng, threads=self.decode_threads)
        except BadSampleError as e:
            raise BadSampleError(where, e.reason) from None
        views = [v for clip in sample.clips for v in apply_transform(self.transform, clip, rng)]
        return {
            "clips": views,
            "label": label,
            "indices": [torch.as_tensor(np.asarray(i), dtype=torch.int64) for i in sample.indices],
            "path": str(meta.get("source", where)),
            "dataset": self.dataset,
            "fpc": self.sampling.frames_per_clip,
        }

    def _reader_stream(self, reader: int, num_readers: int, epoch: int):
        """Raw `(url, key, members)` for one reader in one epoch (infinite in resampled mode)."""
        if self.resampled:
            rng = np.random.default_rng([self.seed, epoch, reader, 17])
            empty_in_a_row = 0
            while True:
                url = self.urls[int(rng.integers(len(self.urls)))]
                empty = True
                for key, members in self._raw_samples(url):
                    empty = False
                    yield url, key, members
                empty_in_a_row = empty_in_a_row + 1 if empty else 0
                if empty_in_a_row >= max(100, 10 * len(self.urls)):
                    raise RuntimeError(
                        f"ShardDataset: {empty_in_a_row} shards in a row without samples in {self.urls[:3]}"
                    )
        order = list(range(len(self.urls)))
        if self.shuffle_shards:
            np.random.default_rng([self.seed, epoch]).shuffle(order)
        for shard, n, k in assign_shards(len(order), reader, num_readers):
            url = self.urls[order[shard]]
            for p, (key, members) in enumerate(self._raw_samples(url)):
                if p % n == k:
                    yield url, key, members

    def iter_reader(
        self, rank: int, world_size: int, worker_id: int, num_workers: int, epoch: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The samples of one reader (rank × worker) in one epoch — what `__iter__` runs in each worker."""
        epoch = self.epoch if epoch is None else epoch
        reader, num_readers = rank * num_workers + worker_id, world_size * num_workers
        quota = None
        if self.epoch_size is not None:
            quota = self.epoch_size // num_workers + (1 if worker_id < self.epoch_size % num_workers else 0)
        rng = np.random.default_rng([self.seed, epoch, reader, 29])
        buffer: list[tuple[str, str, dict[str, bytes]]] = []
        raw = self._reader_stream(reader, num_readers, epoch)
        produced = 0

        def emit(item: tuple[str, str, dict[str, bytes]]) -> dict[str, Any] | None:
            url, key, members = item
            try:
                out = self._decode(url, key, members, rng)
            except BadSampleError as e:
                self.skips.record(e.path, e.reason)
                return None
            out["skipped"] = self.skips.take_delta()
            return out

        misses = 0
        for item in raw:
            if self.shuffle_buffer > 1:
                buffer.append(item)
                if len(buffer) < self.shuffle_buffer:
                    continue
                j = int(rng.integers(len(buffer)))
                buffer[j], buffer[-1] = buffer[-1], buffer[j]
                item = buffer.pop()
            out = emit(item)
            if out is None:
                misses += 1
                if self.resampled and produced == 0 and misses > 1000:
                    raise RuntimeError(f"ShardDataset: 1000 bad samples and none readable in {self.urls[:3]}…")
                continue
            yield out
            produced += 1
            if quota is not None and produced >= quota:
                return
        rng.shuffle(buffer)
        for item in buffer:
            out = emit(item)
            if out is not None:
                yield out


class EpochDataLoader(DataLoader):
    """A DataLoader that calls `dataset.set_epoch(e)` (e = 0, 1, …) before each new iterator.

    Lightning only calls `set_epoch` on samplers; iterable datasets need this to reshuffle every epoch when workers are
    not persistent (persistent workers advance their own epoch counter, see `ShardDataset`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_epoch = 0

    def __iter__(self):  # type: ignore[override]
        set_epoch: Callable[[int], None] | None = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch) and not (self.persistent_workers and self._iterator is not None):
            set_epoch(self._next_epoch)
        self._next_epoch += 1
        return super().__iter__()
