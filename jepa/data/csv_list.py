"""Sample lists in the official V-JEPA 2 formats: space-separated CSVs (`path label`), `::` CSVs, `.npy` path arrays.

Rules (spec data.md §1):

- one sample per line, `path label`, separated by ONE space, no header; `label` an integer (0 for unlabelled data);
- a file where any line contains `::` is read with the `::` delimiter instead (the official loader falls back to
  `::` when the space-separated parse fails: use it for paths containing spaces);
- `.npy` files hold a 1-D array of path strings (numpy unicode/bytes dtype; object arrays are refused because they
  would need unpickling); labels are all 0;
- relative paths are resolved against the folder of the list file (official lists hold absolute paths; relative
  ones make a dataset folder relocatable); `~` is expanded;
- several lists are concatenated; a global index maps to `(list index, local index)` through cumulative sizes.

A malformed line fails immediately with `CSVFormatError("file:line: reason")`.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CSVFormatError", "SampleList", "VideoSampleRef", "read_sample_list"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class CSVFormatError(ValueError):
    """A sample list file is malformed; the message starts with `file:line:`."""


@dataclass(frozen=True)
class VideoSampleRef:
    """One entry of a sample list: resolved path, integer label, index of the list (dataset) it came from."""

    path: str
    label: int
    dataset: int = 0

    @property
    def is_image(self) -> bool:
        """True when the path has an image extension (jpg / jpeg / png, any case)."""
        return self.path.lower().endswith(IMAGE_EXTENSIONS)


def _resolve(path: str, base: str) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def _read_csv(path: str) -> list[tuple[str, int]]:
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    delimiter = "::" if any("::" in line for line in lines) else " "
    out: list[tuple[str, int]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) != 2:
            hint = " (paths with spaces need the '::' delimiter)" if delimiter == " " and len(fields) > 2 else ""
            raise CSVFormatError(
                f"{path}:{lineno}: expected 2 fields 'path{delimiter}label', got {len(fields)} in {line!r}{hint}"
            )
        file_path, label = fields[0].strip(), fields[1].strip()
        if not file_path:
            raise CSVFormatError(f"{path}:{lineno}: empty path in {line!r}")
        try:
            label_int = int(label)
        except ValueError:
            raise CSVFormatError(f"{path}:{lineno}: label must be an integer, got {label!r}") from None
        out.append((_resolve(file_path, base), label_int))
    return out


def _read_npy(path: str) -> list[tuple[str, int]]:
    base = os.path.dirname(os.path.abspath(path))
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise CSVFormatError(f"{path}:0: expected a 1-D array of path strings (not an object array): {e}") from None
    if arr.ndim != 1 or arr.dtype.kind not in "US":
        raise CSVFormatError(f"{path}:0: expected a 1-D array of path strings, got shape {arr.shape} dtype {arr.dtype}")
    paths = [p.decode() if isinstance(p, bytes) else str(p) for p in arr.tolist()]
    return [(_resolve(p, base), 0) for p in paths]


def read_sample_list(path: str | os.PathLike) -> list[tuple[str, int]]:
    """Read one `.csv` (or any text list) or `.npy` sample list → `[(resolved path, label), ...]`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sample list {path!r} does not exist")
    return _read_npy(path) if path.endswith(".npy") else _read_csv(path)


class SampleList(Sequence[VideoSampleRef]):
    """Several sample lists concatenated; `self[i]` → `VideoSampleRef` with the list index in `.dataset`.

    Args:
        lists: paths of `.csv` / `.npy` lists, or already parsed `[(path, label), ...]` lists.
    """

    def __init__(self, lists: Sequence[str | os.PathLike | Sequence[tuple[str, int]]]) -> None:
        if isinstance(lists, (str, os.PathLike)):
            lists = [lists]
        if len(lists) == 0:
            raise ValueError("SampleList: expected at least one sample list, got none")
        self.sources: list[str] = []
        self._entries: list[list[tuple[str, int]]] = []
        for item in lists:
            if isinstance(item, (str, os.PathLike)):
                self.sources.append(os.fspath(item))
                self._entries.append(read_sample_list(item))
            else:
                self.sources.append(f"<list {len(self.sources)}>")
                self._entries.append([(str(p), int(lab)) for p, lab in item])
        self.sizes = [len(e) for e in self._entries]
        self.cumulative = list(np.cumsum(self.sizes).tolist())

    def __len__(self) -> int:
        return self.cumulative[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """Global index → `(list index, local index)` (official: cumulative sizes + bisect)."""
        if not 0 <= index < len(self):
            raise IndexError(f"SampleList: index {index} out of range for {len(self)} samples")
        dataset = bisect.bisect_right(self.cumulative, index)
        local = index - (self.cumulative[dataset - 1] if dataset > 0 else 0)
        return dataset, local

    def __getitem__(self, index: int) -> VideoSampleRef:  # type: ignore[override]
        dataset, local = self.locate(int(index))
        path, label = self._entries[dataset][local]
        return VideoSampleRef(path=path, label=label, dataset=dataset)
