"""Read Lightning checkpoints written as one file or as a sharded ``torch.distributed.checkpoint`` directory.

Under ``ModelParallelStrategy(save_distributed_checkpoint=True)`` (FSDP2) Lightning writes a *directory* instead of
a ``.ckpt`` file:

- ``.metadata``: the DCP index (which shard file holds which chunk of which tensor), a pickled
  ``torch.distributed.checkpoint.metadata.Metadata``;
- ``__{rank}_{i}.distcp``: the tensor shards of every rank and the non-tensor leaves (``torch.save`` bytes);
- ``meta.pt``: everything else of the Lightning checkpoint (``hyper_parameters``, ``global_step``, ``loops``,
  ``callbacks``, the task's own entries), written by rank 0 with ``torch.save``.

The DCP part holds ``state_dict`` (the module state, DTensor shards) and ``optimizer_0``, ``optimizer_1``, … (the
optimizer states keyed by parameter name). :func:`load_lightning_checkpoint` gathers all of it in one process
without a process group and returns the dict a single-file checkpoint gives.

Nothing is unpickled freely: ``meta.pt`` and the non-tensor leaves load with ``torch.load(weights_only=True)``, and
``.metadata`` (plain pickle in DCP) goes through an unpickler that only builds DCP's metadata dataclasses,
``torch.Size``, dtypes, layouts and ``pathlib`` paths.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

DCP_METADATA = ".metadata"  # torch.distributed.checkpoint's index file
LIGHTNING_META = "meta.pt"  # Lightning's non-tensor part of a sharded checkpoint
_STATE_KEY = "state_dict"
_OPTIMIZER_PREFIX = "optimizer_"


def is_sharded_checkpoint(path: str | os.PathLike[str]) -> bool:
    """``True`` when ``path`` is a ``torch.distributed.checkpoint`` directory (it holds a ``.metadata`` file)."""
    return (Path(path) / DCP_METADATA).is_file()


def _expected(path: str | os.PathLike[str]) -> str:
    return (
        f"{os.fspath(path)}: expected a checkpoint file (torch.save) or a sharded checkpoint directory containing "
        f"'{DCP_METADATA}' (torch.distributed.checkpoint, as Lightning's ModelParallelStrategy writes with "
        "save_distributed_checkpoint=True)"
    )


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_file() or is_sharded_checkpoint(p):
        return p
    if not p.exists():
        raise FileNotFoundError(f"{_expected(p)}; nothing exists there")
    raise FileNotFoundError(f"{_expected(p)}; the directory has no '{DCP_METADATA}' (contents: {_listing(p)})")


def _listing(directory: Path) -> list[str]:
    return sorted(child.name for child in directory.iterdir())[:8]


# --------------------------------------------------------------------------------------------- safe DCP metadata
def _allowed_global(module: str, name: str) -> Any | None:
    """The object a DCP ``.metadata`` pickle may reference as ``module.name``, or ``None`` when it is not allowed."""
    from torch.distributed.checkpoint import filesystem, metadata

    if module == metadata.__name__:  # Metadata, TensorStorageMetadata, ChunkStorageMetadata, ... (dataclasses, enum)
        value = getattr(metadata, name, None)
        return value if isinstance(value, type) and value.__module__ == module else None
    if (module, name) == (filesystem.__name__, "_StorageInfo"):  # (relative file, offset, length) of a chunk
        return filesystem._StorageInfo
    if module == "torch":
        value = getattr(torch, name, None)
        return value if value is torch.Size or isinstance(value, torch.dtype) else None
    if (module, name) == ("torch.serialization", "_get_layout"):  # layout by name ("torch.strided")
        return torch.serialization._get_layout
    if module == "pathlib" and name in ("Path", "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"):
        import pathlib

        return getattr(pathlib, name)  # StorageMeta.checkpoint_id: the directory it was saved to
    return None


class _MetadataUnpickler(pickle.Unpickler):
    """A pickle reader that builds only what a DCP ``Metadata`` is made of (see :func:`_allowed_global`)."""

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        value = _allowed_global(module, name)
        if value is None:
            raise pickle.UnpicklingError(
                f"{self.path}: refusing to load {module}.{name}; a torch.distributed.checkpoint '{DCP_METADATA}' "
                "holds only its metadata dataclasses, torch.Size, dtypes, layouts and pathlib paths"
            )
        return value


def read_dcp_metadata(path: str | os.PathLike[str]) -> Any:
    """Read the ``.metadata`` index of a ``torch.distributed.checkpoint`` directory with a restricted unpickler.

    Returns:
        The ``torch.distributed.checkpoint.metadata.Metadata``: ``state_dict_metadata`` (flattened key →
        ``TensorStorageMetadata`` (size, dtype, chunks) or ``BytesStorageMetadata``), ``planner_data`` (flattened
        key → path in the nested state, e.g. ``("optimizer_0", "param_groups", 0, "lr")``), ``storage_data``.
    """
    file = Path(path) / DCP_METADATA
    if not file.is_file():
        raise FileNotFoundError(_expected(path))
    with open(file, "rb") as f:
        metadata = _MetadataUnpickler(f, file).load()
    from torch.distributed.checkpoint.metadata import Metadata

    if not isinstance(metadata, Metadata):
        raise TypeError(f"{file}: holds a {type(metadata).__name__}, expected a torch.distributed.checkpoint Metadata")
    return metadata


def _nested_path(metadata: Any, flat_key: str) -> tuple[str | int, ...]:
    """Where a flattened DCP key lives in the nested state (``state_dict.x`` → ``("state_dict", "x")``)."""
    mapping = metadata.planner_data if isinstance(metadata.planner_data, dict) else {}
    return tuple(mapping.get(flat_key, (flat_key,)))


# --------------------------------------------------------------------------------------------- gathering the shards
def _safe_reader(path: Path, metadata: Any) -> Any:
    from torch.distributed.checkpoint import FileSystemReader

    class _Reader(FileSystemReader):
        """DCP's file reader, handed the ``.metadata`` of :func:`read_dcp_metadata` (no plain ``pickle.load``)."""

        def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("rank") is not None:
                raise ValueError(f"{path}: per-rank DCP metadata files are not supported")
            from torch.distributed.checkpoint.metadata import StorageMeta

            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return _Reader(path)


def _safe_planner(path: Path) -> Any:
    from torch.distributed.checkpoint import DefaultLoadPlanner

    class _Planner(DefaultLoadPlanner):
        """Loads into the flat, preallocated state; non-tensor leaves with ``torch.load(weights_only=True)``."""

        def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
            key = read_item.dest_index.fqn
            try:
                self.state_dict[key] = torch.load(value, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as err:
                lines = str(err).splitlines()  # torch's message: the refused global is on the "WeightsUnpickler" line
                detail = next((line.strip() for line in lines if "WeightsUnpickler error" in line), str(err))
                raise pickle.UnpicklingError(
                    f"{path}: the non-tensor entry {key!r} does not load with torch.load(weights_only=True): {detail}"
                ) from None

    return _Planner(flatten_state_dict=False, flatten_sharded_tensors=False)


def _set_nested(root: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """``root[path[0]][path[1]]… = value``, creating dicts (and lists for integer keys) on the way."""
    node: Any = root
    for key, following in zip(path[:-1], path[1:], strict=True):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(node, list):
            node.extend([None] * (int(key) + 1 - len(node)))
            if node[key] is None:
                node[key] = empty
        else:
            node.setdefault(key, empty)
        node = node[key]
    if isinstance(node, list):
        node.extend([None] * (int(path[-1]) + 1 - len(node)))
    node[path[-1]] = value


def load_dcp_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Gather a ``torch.distributed.checkpoint`` directory into one nested state of full CPU tensors.

    Runs in a single process (no process group) and holds the whole checkpoint in CPU memory. Each tensor is
    allocated at its full size and filled from the saved shards (DTensor shards of every rank).

    Returns:
        The state as it was passed to ``torch.distributed.checkpoint.save`` with every DTensor replaced by the full
        tensor, e.g. ``{"state_dict": {name: tensor}, "optimizer_0": {"state": {name: {...}}, "param_groups": [...]}}``.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    directory = _check_path(path)
    if not directory.is_dir():
        raise NotADirectoryError(_expected(directory))
    metadata = read_dcp_metadata(directory)
    flat: dict[str, Any] = {}
    for key, item in metadata.state_dict_metadata.items():  # full-size targets; bytes leaves are filled by the planner
        is_tensor = isinstance(item, TensorStorageMetadata)
        flat[key] = torch.empty(item.size, dtype=item.properties.dtype) if is_tensor else None
    try:
        with warnings.catch_warnings():  # "torch.distributed is disabled ... single process": exactly what we want
            warnings.simplefilter("ignore", UserWarning)
            reader, planner = _safe_reader(directory, metadata), _safe_planner(directory)
            dcp.load(flat, storage_reader=reader, planner=planner, no_dist=True)
    except CheckpointException as err:  # a BaseException wrapping what failed; one process: re-raise that
        failures = [failure for failure, _ in err.failures.values()]
        if len(failures) == 1 and isinstance(failures[0], Exception):
            raise failures[0] from None
        raise RuntimeError(f"{directory}: torch.distributed.checkpoint could not read it: {err}") from None
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        _set_nested(nested, _nested_path(metadata, key), value)
    return nested


def _position_keyed(optimizer: dict[str, Any]) -> dict[str, Any]:
    """A name-keyed optimizer state (``get_optimizer_state_dict``) → the layout of ``Optimizer.state_dict()``.

    Parameters are numbered by their position in param-group order, as ``torch.optim.Optimizer.state_dict()``
    numbers them (and as a DDP / single-device Lightning checkpoint holds them).
    """
    groups = optimizer.get("param_groups", [])
    names = [name for group in groups for name in group["params"]]
    index = {name: k for k, name in enumerate(names)}
    state = optimizer.get("state", {})
    unknown = sorted(set(state) - set(index))
    if unknown:
        raise KeyError(f"optimizer state for {unknown[:4]} whose parameters are in no param group")
    return {
        "state": {index[name]: value for name, value in state.items()},
        "param_groups": [{**group, "params": [index[name] for name in group["params"]]} for group in groups],
    }


def _optimizer_index(key: str) -> int | None:
    suffix = key.removeprefix(_OPTIMIZER_PREFIX)
    return int(suffix) if key.startswith(_OPTIMIZER_PREFIX) and suffix.isdigit() else None


def load_lightning_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a Lightning checkpoint, single file or sharded directory, as the dict ``torch.load`` gives for a file.

    Args:
        path: a checkpoint file (``torch.load(path, weights_only=True)``; also official ``.pt`` files) or a
            directory written by ``ModelParallelStrategy(save_distributed_checkpoint=True)``.

    Returns:
        For a directory: ``meta.pt`` (``hyper_parameters``, ``global_step``, ``loops``, ``callbacks``, …) plus
        ``state_dict`` (name → full CPU tensor with its full shape) and, when saved, ``optimizer_states`` (a list,
        one ``{"state", "param_groups"}`` per optimizer, parameters numbered by position in param-group order as
        ``Optimizer.state_dict()`` does; the full-state-dict FSDP file numbers them by ``model.parameters()``
        order instead, the tensors are the same).
    """
    p = _check_path(path)
    if p.is_file():
        return torch.load(p, map_location="cpu", weights_only=True)
    state = load_dcp_state(p)
    meta_file = p / LIGHTNING_META
    checkpoint: dict[str, Any] = {}
    if meta_file.is_file():
        checkpoint.update(torch.load(meta_file, map_location="cpu", weights_only=True))
    optimizers = sorted((i, key) for key in state if (i := _optimizer_index(key)) is not None)
    if [i for i, _ in optimizers] != list(range(len(optimizers))):
        raise KeyError(f"{p}: optimizer entries {[key for _, key in optimizers]}; expected optimizer_0, optimizer_1, …")
    if optimizers:
        checkpoint["optimizer_states"] = []
        for _, key in optimizers:
            try:
                checkpoint["optimizer_states"].append(_position_keyed(state.pop(key)))
            except KeyError as err:
                raise KeyError(f"{p}: {key}: {err.args[0]}") from None
    checkpoint[_STATE_KEY] = state.pop(_STATE_KEY, {})
    checkpoint.update(state)  # anything else that was saved through DCP
    return checkpoint


def checkpoint_state_keys(path: str | os.PathLike[str]) -> set[str]:
    """The ``state_dict`` entry names of a Lightning checkpoint without reading its tensors.

    A file is memory-mapped; for a sharded directory only the ``.metadata`` index is read.
    """
    p = _check_path(path)
    if p.is_file():
        return set(torch.load(p, map_location="cpu", mmap=True, weights_only=True).get(_STATE_KEY, {}))
    metadata = read_dcp_metadata(p)
    paths = (_nested_path(metadata, key) for key in metadata.state_dict_metadata)
    return {str(nested[1]) for nested in paths if len(nested) == 2 and nested[0] == _STATE_KEY}
