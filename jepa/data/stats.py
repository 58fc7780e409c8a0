"""Bad-sample bookkeeping: a per-process skip counter and warn-once-per-path logging.

Counting across DataLoader workers and DDP ranks: each worker process holds its own `SkipCounter`. Datasets attach
the number of samples skipped since their previous output to every sample they return (`sample["skipped"]`, an
int delta); the collate functions of `jepa.data.datamodules` sum it into `batch["skipped"]` (int64 scalar tensor).
Summing deltas over batches, workers and ranks gives the exact total, so a LightningModule logs it with

    self.log("data/skipped", batch["skipped"].float(), reduce_fx="sum", sync_dist=True)
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("jepa.data")

__all__ = ["SkipCounter", "logger"]


class SkipCounter:
    """Counts skipped samples by reason and warns once per bad path (per process).

    `record(path, reason)` logs a warning the first time `path` is seen; `take_delta()` returns the number of skips
    since its previous call (what a dataset attaches to the next sample); `total` / `by_reason` are cumulative.
    """

    def __init__(self, name: str = "data") -> None:
        self.name = name
        self.total = 0
        self.by_reason: Counter[str] = Counter()
        self._warned: set[str] = set()
        self._delta = 0
        self._lock = threading.Lock()

    def record(self, path: str, reason: str) -> None:
        """Count one skipped sample at `path` because of `reason`; warn the first time this path is skipped."""
        with self._lock:
            self.total += 1
            self._delta += 1
            self.by_reason[reason.split(":")[0][:80]] += 1
            first = path not in self._warned
            self._warned.add(path)
        if first:
            logger.warning("%s: skipping bad sample %s: %s", self.name, path, reason)

    def take_delta(self) -> int:
        """Number of skips recorded since the previous call."""
        with self._lock:
            delta, self._delta = self._delta, 0
        return delta

    @property
    def warned_paths(self) -> frozenset[str]:
        """Paths that have been warned about (each exactly once)."""
        return frozenset(self._warned)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
