"""Resolve a checkpoint *source* string to local files: Hub repo id, URL, official name, directory or file.

Accepted sources (first match wins):

1. an existing local path: a ``.pt`` / ``.pth`` / ``.safetensors`` file, or a directory holding ``config.json`` +
   ``model.safetensors`` (jepa or transformers layout) or a single ``.pt`` / ``.pth`` file;
2. ``http://`` / ``https://`` URL: downloaded once into the jepa cache (``$JEPA_CACHE`` or ``~/.cache/jepa``),
   written to a temporary file and renamed, so an interrupted download never leaves a truncated checkpoint;
3. a released official file name from :data:`OFFICIAL_FILES` (``vitl``, ``vitg-384``, ``ssv2-vitl-16x2x3`` …):
   its ``https://dl.fbaipublicfiles.com/vjepa2/`` URL, as in 2;
4. a Hugging Face Hub repo id ``org/name`` (optionally ``org/name@revision`` or ``hf://org/name``): only
   ``config.json`` and the safetensors weights (shards included) are fetched, through ``huggingface_hub`` (its cache,
   ``HF_HUB_OFFLINE``).

Offline mode (``HF_HUB_OFFLINE=1`` or ``JEPA_OFFLINE=1``, read at call time) never touches the network: cached
files are used, anything else is a :class:`SourceNotAvailableError` naming the source and the variable.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

OFFICIAL_BASE_URL = "https://dl.fbaipublicfiles.com/vjepa2/"

#: Released official files (spec checkpoints.md §1): short name → (path under the base URL, description).
OFFICIAL_FILES: dict[str, tuple[str, str]] = {
    "vitl": ("vitl.pt", "V-JEPA 2 ViT-L/16 encoder + predictor, 256 px"),
    "vith": ("vith.pt", "V-JEPA 2 ViT-H/16 encoder + predictor, 256 px"),
    "vitg": ("vitg.pt", "V-JEPA 2 ViT-g/16 encoder + predictor, 256 px"),
    "vitg-384": ("vitg-384.pt", "V-JEPA 2 ViT-g/16 encoder + predictor, cooldown at 384 px"),
    "vjepa2-ac-vitg": ("vjepa2-ac-vitg.pt", "V-JEPA 2-AC: ViT-g encoder + action-conditioned predictor"),
    "ssv2-vitl-16x2x3": ("evals/ssv2-vitl-16x2x3.pt", "SSv2 attentive probe, ViT-L, 16x2x3, 256 px"),
    "diving48-vitl-256": ("evals/diving48-vitl-256.pt", "Diving-48 probe (multilevel), ViT-L, 256 px"),
    "ek100-vitl-256": ("evals/ek100-vitl-256.pt", "EK100 anticipation probe, ViT-L, 256 px"),
    "ssv2-vitg-384-64x2x3": ("evals/ssv2-vitg-384-64x2x3.pt", "SSv2 attentive probe, ViT-g, 64x2x3, 384 px"),
    "diving48-vitg-384-32x4x3": ("evals/diving48-vitg-384-32x4x3.pt", "Diving-48 probe (multilevel), ViT-g, 384 px"),
    "ek100-vitg-384": ("evals/ek100-vitg-384.pt", "EK100 anticipation probe, ViT-g, 384 px"),
}

#: Encoder registry name matching each released pretrain file (its crop decides the predictor's RoPE grid).
OFFICIAL_ARCHITECTURES: dict[str, str] = {
    "vitl": "vjepa2_vitl_256",
    "vith": "vjepa2_vith_256",
    "vitg": "vjepa2_vitg_256",
    "vitg-384": "vjepa2_vitg_384",
}

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
_HUB_ID = re.compile(r"^(?:hf://)?([A-Za-z0-9][\w.-]*/[\w.-]+)(?:@([\w./-]+))?$")

SourceKind = Literal["file", "directory", "url", "official", "hub"]


class SourceNotAvailableError(FileNotFoundError):
    """A source that cannot be turned into local files (offline and not cached, download failed, no such file)."""


class _NotInRepo(Exception):
    """A file the Hub repo does not have (as opposed to one that could not be fetched)."""


@dataclass(frozen=True)
class ResolvedSource:
    """Local files for a source.

    Attributes:
        source: the string as given.
        kind: how it was resolved.
        path: the weights file (``.pt`` / ``.pth`` / ``.safetensors``, or a ``model.safetensors.index.json`` whose
            shards lie next to it).
        config_path: ``config.json`` next to the weights, when there is one.
        official_name: short name from :data:`OFFICIAL_FILES` when the source is a released official file.
    """

    source: str
    kind: SourceKind
    path: Path
    config_path: Path | None = None
    official_name: str | None = None


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) or ``JEPA_OFFLINE`` is set to a true value now."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "JEPA_OFFLINE")
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in names)


def default_cache_dir() -> Path:
    """``$JEPA_CACHE`` or ``~/.cache/jepa``: where URL downloads are kept."""
    return Path(os.environ.get("JEPA_CACHE") or Path.home() / ".cache" / "jepa").expanduser()


def official_url(name: str) -> str:
    """URL of a released official file given its short name (``vitl``) or file name (``vitl.pt``)."""
    key = name[: -len(".pt")] if name.endswith(".pt") else name
    key = key.removeprefix("evals/")
    if key not in OFFICIAL_FILES:
        raise KeyError(f"unknown official V-JEPA 2 file {name!r}; known: {sorted(OFFICIAL_FILES)}")
    return OFFICIAL_BASE_URL + OFFICIAL_FILES[key][0]


def official_name_of(source: str) -> str | None:
    """Short official name for a name / file name / official URL, else ``None``."""
    candidate = source
    if source.startswith(OFFICIAL_BASE_URL):
        candidate = source[len(OFFICIAL_BASE_URL) :]
    candidate = candidate.removeprefix("evals/").removesuffix(".pt")
    return candidate if candidate in OFFICIAL_FILES else None


# ---------------------------------------------------------------------------------------------- URLs
def url_cache_path(url: str, cache_dir: str | Path | None = None) -> Path:
    """Where ``url`` is cached: ``<cache>/<host>/<path>`` (readable, no collisions between hosts)."""
    parsed = urllib.parse.urlparse(url)
    parts = [p for p in parsed.path.split("/") if p and p not in (".", "..")]
    if not parts:
        raise ValueError(f"URL has no file name: {url!r}")
    host = parsed.netloc.replace(":", "_")
    return Path(cache_dir or default_cache_dir()) / host / Path(*parts)


def download_url(url: str, cache_dir: str | Path | None = None, *, progress: bool = True, force: bool = False) -> Path:
    """Download ``url`` into the cache (once) and return the local path.

    A cached file is returned without any network access. The download goes to a temporary file in the target
    folder that is renamed when complete. In offline mode a missing file raises :class:`SourceNotAvailableError`.
    """
    target = url_cache_path(url, cache_dir)
    if target.is_file() and not force:
        log.debug("cache hit for %s: %s", url, target)
        return target
    if is_offline():
        raise SourceNotAvailableError(
            f"{url} is not in the cache ({target}) and offline mode is on (HF_HUB_OFFLINE / JEPA_OFFLINE); "
            "download it once with network access or unset the variable"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "jepa-lightning"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = _progress_bar(total, target.name, enabled=progress)
            try:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
            if total is not None and out.tell() != total:
                raise SourceNotAvailableError(f"download of {url} is truncated: {out.tell()} of {total} bytes")
        os.replace(tmp, target)
    except urllib.error.URLError as error:
        raise SourceNotAvailableError(f"could not download {url}: {error}") from error
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("downloaded %s to %s", url, target)
    return target


def _progress_bar(total: int | None, name: str, *, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not enabled)


# ---------------------------------------------------------------------------------------------- Hub
def parse_hub_id(source: str) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` for ``org/name``, ``org/name@rev`` or ``hf://org/name``; ``None`` otherwise."""
    match = _HUB_ID.match(source)
    return (match[1], match[2]) if match else None


def download_hub(
    repo_id: str, *, revision: str | None = None, cache_dir: str | Path | None = None
) -> tuple[Path, Path | None]:
    """Fetch ``config.json`` and the safetensors weights of a Hub repo (cache first) → (weights, config path).

    The weights are ``model.safetensors``, or for a sharded repo ``model.safetensors.index.json`` (returned) plus
    every shard it lists (fetched next to it). Nothing else is downloaded. Offline mode uses the cache only
    (``local_files_only``).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    offline = is_offline()
    where = f"{repo_id}" + (f"@{revision}" if revision else "")

    def fetch(filename: str) -> Path:
        try:
            return Path(
                hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, local_files_only=offline)
            )
        except LocalEntryNotFoundError as error:
            reason = (
                "offline mode is on (HF_HUB_OFFLINE / JEPA_OFFLINE=1) and it is not in the Hugging Face cache"
                if offline
                else "it is not cached and the Hub could not be reached"
            )
            raise SourceNotAvailableError(
                f"cannot load {filename} of Hub repo {where!r}: {reason} "
                f"(cache: {cache_dir or 'the default HF_HUB_CACHE'}). "
                f"Run once with network access (unset HF_HUB_OFFLINE), e.g. `jepa download {repo_id}`."
            ) from error
        except EntryNotFoundError as error:
            raise _NotInRepo(filename) from error  # absent from the repo: the caller tries the next name
        except HfHubHTTPError as error:
            raise SourceNotAvailableError(f"cannot download Hub repo {where!r}: {error}") from error

    try:
        weights = fetch(SAFETENSORS_NAME)
    except SourceNotAvailableError as not_cached:
        try:  # a sharded repo whose index is cached
            weights = _fetch_sharded(fetch)
        except (SourceNotAvailableError, _NotInRepo):
            raise not_cached from None
    except _NotInRepo:
        try:
            weights = _fetch_sharded(fetch)
        except _NotInRepo as error:
            raise SourceNotAvailableError(
                f"Hub repo {where!r} has neither {SAFETENSORS_NAME} nor {SAFETENSORS_INDEX_NAME} "
                "(only safetensors repos are supported)"
            ) from error
    try:
        config = fetch("config.json")
    except (_NotInRepo, SourceNotAvailableError):
        config = None
    return weights, config


def _fetch_sharded(fetch) -> Path:
    """Fetch the safetensors index and every shard it lists; returns the index path."""
    index = fetch(SAFETENSORS_INDEX_NAME)
    for shard in shard_names(index):
        fetch(shard)
    return index


def shard_names(index: Path) -> list[str]:
    """Shard file names listed in a ``model.safetensors.index.json`` (``weight_map`` values), sorted."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SourceNotAvailableError(
            f"{index}: not a safetensors index (no readable 'weight_map'): {error}"
        ) from error
    return sorted(set(weight_map.values()))


# ---------------------------------------------------------------------------------------------- dispatch
def _resolve_directory(directory: Path, source: str) -> ResolvedSource:
    config = directory / "config.json"
    for name in (SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME):
        if (directory / name).is_file():
            return ResolvedSource(source, "directory", directory / name, config if config.is_file() else None)
    candidates = sorted(p for p in directory.iterdir() if p.suffix in (".pt", ".pth", ".safetensors") and p.is_file())
    if len(candidates) == 1:
        return ResolvedSource(source, "directory", candidates[0], config if config.is_file() else None)
    found = [p.name for p in sorted(directory.iterdir())][:20]
    raise SourceNotAvailableError(
        f"directory {directory} has no model.safetensors and not exactly one .pt/.pth/.safetensors file "
        f"(found: {found}); expected a jepa or transformers directory (config.json + model.safetensors)"
    )


def resolve_source(
    source: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ResolvedSource:
    """Turn ``source`` into local files (downloading when needed); see the module docstring for the forms.

    Args:
        source: path, URL, official short name or Hub repo id.
        revision: Hub revision (branch, tag or commit); overrides ``@revision`` in the id.
        cache_dir: Hub sources: the Hugging Face cache folder (default: huggingface_hub's); URLs / official
            names: the jepa cache (default :func:`default_cache_dir`).
        progress: show a progress bar for URL downloads.
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _resolve_directory(path, text)
    if path.is_file():
        if path.suffix not in CHECKPOINT_SUFFIXES:
            log.warning("%s: unexpected suffix %r (expected one of %s)", path, path.suffix, CHECKPOINT_SUFFIXES)
        config = path.parent / "config.json" if path.suffix == ".safetensors" else None
        return ResolvedSource(text, "file", path, config if config is not None and config.is_file() else None)
    if text.startswith(("http://", "https://")):
        return ResolvedSource(
            text, "url", download_url(text, cache_dir, progress=progress), official_name=official_name_of(text)
        )
    if text in OFFICIAL_FILES:
        url = official_url(text)
        return ResolvedSource(text, "official", download_url(url, cache_dir, progress=progress), official_name=text)
    if path.suffix in CHECKPOINT_SUFFIXES:
        raise SourceNotAvailableError(f"checkpoint file {text!r} does not exist (resolved to {path.absolute()})")
    hub = parse_hub_id(text)
    if hub is not None and not text.startswith((".", "/", "~")):
        repo_id, id_revision = hub
        weights, config = download_hub(repo_id, revision=revision or id_revision, cache_dir=cache_dir)
        return ResolvedSource(text, "hub", weights, config)
    raise SourceNotAvailableError(
        f"checkpoint source {text!r} is not an existing file or directory, an http(s) URL, an official file name "
        f"({', '.join(sorted(OFFICIAL_FILES))}) or a Hugging Face repo id 'org/name'"
    )
