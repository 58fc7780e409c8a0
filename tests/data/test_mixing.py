"""Weighted mixtures (streaming) and the official DistributedWeightedSampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
from torch.utils.data import Dataset, IterableDataset

from jepa.data.mixing import DistributedWeightedSampler, MixtureSource, WeightedMixture, per_sample_weights


class CountingStream(IterableDataset):
    """Iterable source: yields `n` tiny samples per epoch, split over readers like ShardDataset."""

    def __init__(self, name: str, n: int, fpc: int) -> None:
        self.name, self.n, self.fpc = name, n, fpc

    def iter_reader(self, rank, world, worker, num_workers, epoch):
        reader, readers = rank * num_workers + worker, world * num_workers
        for i in range(reader, self.n, readers):
            yield {"path": f"{self.name}/{i}", "fpc": self.fpc, "epoch": epoch}

    def __iter__(self):
        return self.iter_reader(0, 1, 0, 1, 0)


class ListDataset(Dataset):
    def __init__(self, n: int, fpc: int) -> None:
        self.n, self.fpc = n, fpc

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return {"path": f"map/{i}", "fpc": self.fpc}


def make_mixture(**kw):
    sources = [
        MixtureSource("k710", CountingStream("k710", 50, 16), 0.335),
        MixtureSource("ssv2", CountingStream("ssv2", 7, 16), 0.100),
        MixtureSource("howto", ListDataset(20, 64), 0.565),
    ]
    return WeightedMixture(sources, **kw)


def test_source_frequencies_match_weights():
    mix = make_mixture(seed=0, epoch_size=10_000, rank=0, world_size=1)
    samples = list(mix)
    assert len(samples) == 10_000
    names = np.array([s["source"] for s in samples])
    for name, w in zip(mix.names, mix.probs, strict=True):
        assert abs((names == name).mean() - w) < 0.01, name
    fpcs = {s["source"]: s["fpc"] for s in samples}
    assert fpcs == {"k710": 16, "ssv2": 16, "howto": 64}
    # the small stream restarted (next epoch) instead of ending the mixture
    assert max(s.get("epoch", 0) for s in samples if s["source"] == "ssv2") > 0


def test_seeded_and_reader_aware():
    a = [s["path"] for s in make_mixture(seed=1, epoch_size=200).iter_reader(0, 2, 0, 2, epoch=0)]
    b = [s["path"] for s in make_mixture(seed=1, epoch_size=200).iter_reader(0, 2, 0, 2, epoch=0)]
    c = [s["path"] for s in make_mixture(seed=1, epoch_size=200).iter_reader(1, 2, 0, 2, epoch=0)]
    d = [s["path"] for s in make_mixture(seed=1, epoch_size=200).iter_reader(0, 2, 0, 2, epoch=1)]
    assert a == b and a != c and a != d
    assert len(a) == 100  # epoch_size per rank split over 2 workers
    k710_a = {p for p in a if p.startswith("k710")}
    k710_c = {p for p in c if p.startswith("k710")}
    assert not (k710_a & k710_c)  # iterable sources split across ranks


def test_bad_weights():
    with pytest.raises(ValueError, match="positive sum"):
        WeightedMixture([MixtureSource("a", ListDataset(2, 4), 0.0)])


def test_distributed_weighted_sampler_official_semantics():
    sizes, weights = [100, 300], [0.75, 0.25]
    world = 3
    samplers = [DistributedWeightedSampler(sizes, weights, num_replicas=world, rank=r, seed=0) for r in range(world)]
    for s in samplers:
        s.set_epoch(2)
    per_rank = [list(s) for s in samplers]
    n = sum(sizes)
    assert all(len(p) == math.ceil(n / world) == len(samplers[0]) for p in per_rank)
    # reference from the spec formula
    p = np.concatenate([np.full(100, 0.75 / 100), np.full(300, 0.25 / 300)])
    ref = np.random.default_rng(0 + 2).choice(n, size=math.ceil(n / world) * world, p=p / p.sum(), replace=True)
    for r in range(world):
        assert per_rank[r] == ref[r::world].tolist()
    np.testing.assert_allclose(per_sample_weights(sizes, weights), p)
    # weights hold per dataset regardless of size
    big = DistributedWeightedSampler(sizes, weights, num_replicas=1, rank=0)
    draws = np.array([i for e in range(25) for i in (big.set_epoch(e), list(big))[1]])
    assert abs((draws < 100).mean() - 0.75) < 0.02
    samplers[0].set_epoch(3)
    assert list(samplers[0]) != per_rank[0]
