"""Weighted mixtures of data sources, and the official map-style weighted distributed sampler.

Two ways to mix (pick one per run):

- `WeightedMixture` (streaming, an `IterableDataset`): each output sample comes from source i with probability
  `w_i / Σw`, chosen by a `numpy.random.Generator` seeded by `(seed, epoch, rank, worker)`. Iterable sources
  (`ShardDataset`) split their own data over ranks / workers; map-style sources (`VideoClipDataset`) are read at
  uniformly random indices (with replacement). The sample records `source` (its name) and `fpc`.
- `DistributedWeightedSampler` (official `VideoDataset` + `datasets_weights`, spec data.md §4): a per-sample weight
  `dataset_weight / dataset_size` over a concatenated map-style dataset; every epoch `total_size = ceil(N / world)
  · world` indices are drawn WITH replacement by `numpy.random.default_rng(seed + epoch).choice(N, size, p)` (the
  same stream on every rank) and rank r takes `indices[r::world]`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset, IterableDataset, Sampler

from jepa.data.shards import EpochStream, _dist_rank_world

__all__ = ["DistributedWeightedSampler", "MixtureSource", "WeightedMixture", "per_sample_weights"]


@dataclass
class MixtureSource:
    """One member of a `WeightedMixture`: a name (recorded in samples), a dataset and its mixture weight."""

    name: str
    dataset: Dataset | IterableDataset
    weight: float


class WeightedMixture(EpochStream):
    """Interleave several sources by weight into one stream of sample dicts.

    Args:
        sources: the members; weights need not sum to 1 (normalised), must be ≥ 0 with a positive sum.
        seed: base seed; the stream of a reader is seeded by `(seed, epoch, rank, worker)`.
        epoch_size: samples per rank per epoch, split over the rank's workers (None: infinite; an exhausted iterable
            source is restarted, which advances its own epoch).
        rank, world_size: override `torch.distributed` (tests).

    Each yielded sample gets `source` (the name), `dataset` (the source index) and keeps its own `fpc`.
    """

    def __init__(
        self,
        sources: Sequence[MixtureSource],
        *,
        seed: int = 0,
        epoch_size: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        if not sources:
            raise ValueError("WeightedMixture: expected at least one source")
        weights = np.asarray([s.weight for s in sources], dtype=np.float64)
        if (weights < 0).any() or not weights.sum() > 0:
            raise ValueError(f"WeightedMixture: weights must be >= 0 with a positive sum, got {weights.tolist()}")
        self.sources = list(sources)
        self.probs = weights / weights.sum()
        self.seed = seed
        self.epoch_size = epoch_size
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._iters_since_set = 0

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def set_epoch(self, epoch: int) -> None:
        """Use `epoch` for the next iteration (also forwarded to sources that have `set_epoch`)."""
        super().set_epoch(epoch)
        for s in self.sources:
            if hasattr(s.dataset, "set_epoch"):
                s.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        if self.epoch_size is None:
            raise TypeError("WeightedMixture has a length only with epoch_size")
        return self.epoch_size

    def iter_reader(
        self, rank: int, world_size: int, worker_id: int, num_workers: int, epoch: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The stream of one reader (rank × worker); what `__iter__` runs inside each DataLoader worker."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch, rank, worker_id])
        quota = None
        if self.epoch_size is not None:
            quota = self.epoch_size // num_workers + (1 if worker_id < self.epoch_size % num_workers else 0)
        iterators: dict[int, Iterator[dict[str, Any]]] = {}
        produced = 0
        while quota is None or produced < quota:
            i = int(rng.choice(len(self.sources), p=self.probs))
            src = self.sources[i]
            if isinstance(src.dataset, IterableDataset):
                sample = self._next_iterable(i, iterators, rank, world_size, worker_id, num_workers, epoch)
            else:
                sample = src.dataset[int(rng.integers(len(src.dataset)))]
            sample = dict(sample)
            sample["source"] = src.name
            sample["dataset"] = i
            yield sample
            produced += 1

    def _next_iterable(self, i, iterators, rank, world_size, worker_id, num_workers, epoch) -> dict[str, Any]:
        ds = self.sources[i].dataset
        for restart in range(2):
            if i not in iterators:
                if hasattr(ds, "iter_reader"):
                    iterators[i] = ds.iter_reader(rank, world_size, worker_id, num_workers, epoch + restart)
                else:
                    iterators[i] = iter(ds)
            try:
                return next(iterators[i])
            except StopIteration:
                del iterators[i]
                epoch += 1
        raise RuntimeError(f"WeightedMixture: source {self.sources[i].name!r} yields no samples for this reader")


def per_sample_weights(dataset_sizes: Sequence[int], dataset_weights: Sequence[float]) -> np.ndarray:
    """Official per-sample weights: `dataset_weight / dataset_size` for every sample of a concatenation."""
    if len(dataset_sizes) != len(dataset_weights):
        raise ValueError(
            f"per_sample_weights: {len(dataset_sizes)} dataset sizes but {len(dataset_weights)} weights; expected equal"
        )
    parts = [np.full(n, w / n, dtype=np.float64) for n, w in zip(dataset_sizes, dataset_weights, strict=True) if n > 0]
    return np.concatenate(parts) if parts else np.zeros(0)


class DistributedWeightedSampler(Sampler[int]):
    """Official `DistributedWeightedSampler` semantics (spec data.md §4) for a concatenated map-style dataset.

    Args:
        dataset_sizes: samples in each concatenated list (e.g. `SampleList.sizes`).
        dataset_weights: weight of each list.
        num_replicas, rank: DDP world size and rank (default: `torch.distributed`, else 1 and 0).
        seed: 0 in the official code.

    Each epoch yields `ceil(N / num_replicas)` global indices for this rank.
    """

    def __init__(
        self,
        dataset_sizes: Sequence[int],
        dataset_weights: Sequence[float],
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        self.weights = per_sample_weights(dataset_sizes, dataset_weights)
        self.rank, self.num_replicas = _dist_rank_world(rank, num_replicas)
        self.seed = seed
        self.epoch = 0
        n = len(self.weights)
        self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(self.seed + self.epoch)
        p = self.weights / self.weights.sum()
        indices = rng.choice(len(self.weights), size=self.total_size, p=p, replace=True)
        return iter(indices[self.rank :: self.num_replicas].tolist())
