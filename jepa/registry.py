"""Name → builder registries for encoders, predictors and heads, with entry-point plugins.

A :class:`Registry` maps a name to a builder (any callable returning an ``nn.Module``) and, optionally, to the
default weights source for that name (a Hub repo id, URL or local path). Third-party packages add entries without
touching ``jepa`` by declaring an entry point in the group of the registry, e.g. in their ``pyproject.toml``::

    [project.entry-points."jepa.encoders"]
    my_vit = "my_package.models:build_my_vit"

The entry point may resolve to a builder (registered under the entry-point name) or to a module whose import
registers entries itself. Plugins are discovered lazily, on the first lookup or listing.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

BuilderT = TypeVar("BuilderT", bound=Callable[..., Any])


class UnknownNameError(KeyError):
    """Raised for a name that no registry entry (built-in or plugin) provides."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the message as written.
        return str(self.args[0])


@dataclass(frozen=True)
class RegistryEntry(Generic[BuilderT]):
    """One registered name.

    Attributes:
        name: the registry name.
        builder: callable building the module; keyword arguments override its defaults.
        weights: default pretrained source for ``pretrained=True`` (Hub repo id, URL, path), or ``None``.
        checkpoint_key: for multi-model official files, which top-level key holds the weights (e.g.
            ``target_encoder``); ``None`` lets the loader pick its default.
        description: one line shown by listings.
        source: ``"builtin"`` or the entry-point value it came from.
    """

    name: str
    builder: BuilderT
    weights: str | None = None
    checkpoint_key: str | None = None
    description: str = ""
    source: str = "builtin"
    tags: tuple[str, ...] = field(default_factory=tuple)


class Registry(Generic[BuilderT]):
    """A named collection of builders with entry-point discovery.

    Args:
        kind: what the registry holds, used in messages ("encoder", "predictor", "head").
        entry_point_group: the ``importlib.metadata`` entry-point group scanned for plugins.
    """

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, RegistryEntry[BuilderT]] = {}
        self._plugins_loaded = False

    # ------------------------------------------------------------------ registration
    def register(
        self,
        name: str | None = None,
        *,
        weights: str | None = None,
        checkpoint_key: str | None = None,
        description: str = "",
        tags: tuple[str, ...] = (),
        override: bool = False,
    ) -> Callable[[BuilderT], BuilderT]:
        """Decorator registering ``builder`` under ``name`` (default: the function's ``__name__``)."""

        def decorator(builder: BuilderT) -> BuilderT:
            self.add(
                name or builder.__name__,
                builder,
                weights=weights,
                checkpoint_key=checkpoint_key,
                description=description,
                tags=tags,
                override=override,
            )
            return builder

        return decorator

    def add(
        self,
        name: str,
        builder: BuilderT,
        *,
        weights: str | None = None,
        checkpoint_key: str | None = None,
        description: str = "",
        tags: tuple[str, ...] = (),
        source: str = "builtin",
        override: bool = False,
    ) -> None:
        """Register ``builder`` under ``name``; a duplicate name is an error unless ``override``."""
        if not callable(builder):
            raise TypeError(f"{self.kind} registry: builder for {name!r} is not callable: {builder!r}")
        if name in self._entries and not override:
            raise ValueError(
                f"{self.kind} registry: {name!r} is already registered (from {self._entries[name].source}); "
                "pass override=True to replace it"
            )
        if not description and builder.__doc__:
            description = builder.__doc__.strip().splitlines()[0]
        self._entries[name] = RegistryEntry(name, builder, weights, checkpoint_key, description, source, tags)

    # ------------------------------------------------------------------ lookup
    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry_point in metadata.entry_points(group=self.entry_point_group):
            try:
                loaded = entry_point.load()
            except Exception as error:  # a broken plugin must not break the library
                warnings.warn(
                    f"could not load {self.kind} plugin {entry_point.name!r} ({entry_point.value}): {error}",
                    stacklevel=2,
                )
                continue
            # A callable is a builder registered under the entry-point name; a module registers itself on import.
            if callable(loaded) and entry_point.name not in self._entries:
                self.add(entry_point.name, loaded, source=f"entry point {entry_point.value}")

    def get(self, name: str) -> RegistryEntry[BuilderT]:
        """The entry for ``name``; an unknown name raises :class:`UnknownNameError` with close matches."""
        if name not in self._entries:
            self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=5, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Available {self.kind}s: `jepa.list_{self.kind}s()` "
                f"({len(self._entries)} registered; plugins come from entry-point group "
                f"{self.entry_point_group!r})."
            ) from None

    def build(self, name: str, **overrides: Any) -> Any:
        """Call the builder registered as ``name`` with ``overrides``."""
        return self.get(name).builder(**overrides)

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style ``pattern`` (``"vjepa2_*"``)."""
        self._load_plugins()
        names = sorted(self._entries)
        if pattern is not None:
            names = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
        return names

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[RegistryEntry[BuilderT]]:
        self._load_plugins()
        return iter([self._entries[name] for name in sorted(self._entries)])

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._entries)


ENCODERS: Registry[Callable[..., Any]] = Registry("encoder", "jepa.encoders")
PREDICTORS: Registry[Callable[..., Any]] = Registry("predictor", "jepa.predictors")
HEADS: Registry[Callable[..., Any]] = Registry("head", "jepa.heads")
