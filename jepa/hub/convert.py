"""Convert checkpoints between the official, transformers and jepa layouts; download released files.

``convert(src, dst, to=...)`` reads any source (:func:`jepa.hub.load_pretrained`) and writes:

* ``official``: one ``.pt`` like the released files: ``encoder`` and ``target_encoder`` (the same weights),
  ``predictor``, ``epoch``, keys prefixed ``module.backbone.``; plus a ``jepa`` entry recording the
  architecture (plain dict, ignored by the official code) so reloading needs no shape inference;
* ``hf``: a directory loadable by ``transformers.VJEPA2Model.from_pretrained`` (``config.json`` +
  ``model.safetensors``);
* ``jepa``: our directory format (:func:`jepa.hub.save_pretrained`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from jepa.hub import layouts
from jepa.hub.pretrained import load_pretrained, save_pretrained
from jepa.hub.sources import OFFICIAL_FILES, download_hub, download_url, official_url, parse_hub_id

log = logging.getLogger(__name__)

Target = Literal["hf", "official", "jepa"]
OFFICIAL_PREFIX = "module.backbone."


def _official_sd(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def save_official(
    path: str | os.PathLike[str], encoder: nn.Module, predictor: nn.Module | None = None, *, epoch: int = 0
) -> Path:
    """Write an official-layout ``.pt`` (``encoder`` = ``target_encoder``, ``predictor``, ``epoch``).

    Args:
        path: output file (parent folders are created).
        encoder: ``VideoViT``; written under both ``encoder`` and ``target_encoder``.
        predictor: ``MaskPredictor`` or ``None``.
        epoch: value of the ``epoch`` entry.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    encoder_sd = layouts.add_prefix(_official_sd(encoder), OFFICIAL_PREFIX)
    checkpoint: dict[str, Any] = {
        "encoder": encoder_sd,
        "target_encoder": dict(encoder_sd),
        "epoch": epoch,
        "jepa": layouts.jepa_config(encoder.config, predictor.config if predictor is not None else None),
    }
    if predictor is not None:
        checkpoint["predictor"] = layouts.add_prefix(_official_sd(predictor), OFFICIAL_PREFIX)
    torch.save(checkpoint, out)
    return out


def save_hf(directory: str | os.PathLike[str], encoder: nn.Module, predictor: nn.Module | None = None) -> Path:
    """Write a transformers ``VJEPA2Model`` directory (``config.json`` + ``model.safetensors``).

    Without a predictor the file holds only encoder weights (transformers then initialises its predictor
    randomly and says so when loading).
    """
    from safetensors.torch import save_file

    config = layouts.configs_to_hf_config(encoder.config, predictor.config if predictor is not None else None)
    if predictor is None:
        log.warning("save_hf: no predictor; VJEPA2Model.from_pretrained will initialise its predictor randomly")
    tensors = layouts.official_to_hf(_official_sd(encoder), _official_sd(predictor) if predictor is not None else None)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in tensors.items()}, str(out / "model.safetensors"), metadata={"format": "pt"}
    )
    with open(out / "config.json", "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
        handle.write("\n")
    return out


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    to: Target,
    checkpoint_key: str | None = None,
    architecture: str | None = None,
    num_heads: int | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """Convert a V-JEPA 2 checkpoint to another layout.

    Args:
        src: any source accepted by :func:`jepa.hub.load_pretrained` (file, directory, URL, Hub id, short name).
        dst: output ``.pt`` file (``to="official"``) or directory (``"hf"``, ``"jepa"``).
        to: ``"hf"``, ``"official"`` or ``"jepa"``.
        checkpoint_key: official sources: which encoder to read (default ``target_encoder``).
        architecture / num_heads: as in :func:`jepa.hub.load_pretrained`.
        revision / cache_dir: Hub revision and cache.

    Returns:
        The written path.
    """
    if to not in ("hf", "official", "jepa"):
        raise ValueError(f"convert: to must be 'hf', 'official' or 'jepa', got {to!r}")
    loaded = load_pretrained(
        src,
        checkpoint_key=checkpoint_key,
        architecture=architecture,
        num_heads=num_heads,
        revision=revision,
        cache_dir=cache_dir,
    )
    if to == "official":
        return save_official(dst, loaded.encoder, loaded.predictor)
    if to == "hf":
        return save_hf(dst, loaded.encoder, loaded.predictor)
    return save_pretrained(dst, loaded.encoder, loaded.predictor)


def download(
    name_or_url: str, cache_dir: str | Path | None = None, *, revision: str | None = None, progress: bool = True
) -> Path:
    """Download a checkpoint into the cache and return its local path (nothing is downloaded twice).

    Args:
        name_or_url: an official short name (``vitl``, ``vitg-384``, ``ssv2-vitl-16x2x3`` …; see
            :data:`jepa.hub.sources.OFFICIAL_FILES`), an http(s) URL, or a Hub repo id ``org/name[@rev]``.
        cache_dir: jepa cache for URLs (default ``$JEPA_CACHE`` or ``~/.cache/jepa``), Hugging Face cache for
            Hub ids.
        revision: Hub revision.

    Returns:
        The downloaded file (URL / official name) or the Hub snapshot folder holding ``config.json`` and
        ``model.safetensors``.
    """
    if name_or_url.startswith(("http://", "https://")):
        return download_url(name_or_url, cache_dir, progress=progress)
    if name_or_url in OFFICIAL_FILES or name_or_url.removesuffix(".pt") in OFFICIAL_FILES:
        return download_url(official_url(name_or_url), cache_dir, progress=progress)
    hub = parse_hub_id(name_or_url)
    if hub is None:
        raise ValueError(
            f"download: {name_or_url!r} is not an http(s) URL, an official file name ({', '.join(OFFICIAL_FILES)}) "
            "or a Hub repo id 'org/name'"
        )
    weights, _ = download_hub(hub[0], revision=revision or hub[1], cache_dir=cache_dir)
    return weights.parent
