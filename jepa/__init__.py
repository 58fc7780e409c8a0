"""jepa: V-JEPA 2 video world models in PyTorch Lightning.

Public API::

    import jepa
    jepa.list_encoders("vjepa2_*")                        # registered encoder names
    model = jepa.create_encoder("vit_large")              # random init, timm-like
    model = jepa.create_encoder("vjepa2_vitl_256", pretrained=True)    # default weights from the Hub
    loaded = jepa.load_pretrained("vitl")                 # official .pt / Hub id / URL / dir → .encoder, .predictor

Importing ``jepa`` registers the built-in encoders and predictors; checkpoint I/O (``huggingface_hub``,
``safetensors``) is imported on first use.
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import TYPE_CHECKING, Any

import jepa.encoders  # noqa: F401  (registers the encoder presets)
import jepa.predictors  # noqa: F401  (registers the predictor presets)

if TYPE_CHECKING:
    from torch import nn

    from jepa.hub.pretrained import Pretrained

try:
    __version__ = metadata.version("jepa-lightning")
except metadata.PackageNotFoundError:  # running from a source checkout without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__", "create_encoder", "list_encoders", "load_pretrained"]


def list_encoders(pattern: str | None = None) -> list[str]:
    """Sorted names of registered encoders (built-in presets, released models, plugins).

    Args:
        pattern: optional shell-style filter, e.g. ``"vjepa2_*"`` or ``"vit_g*"``.
    """
    from jepa.registry import ENCODERS

    return ENCODERS.names(pattern)


def create_encoder(
    name: str,
    pretrained: bool | str | os.PathLike[str] = False,
    checkpoint_key: str | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered encoder, like ``timm.create_model``.

    Args:
        name: registry name (``vit_large``, ``vjepa2_vitg_384`` …; see :func:`list_encoders`).
        pretrained: ``False`` for random initialisation; ``True`` for the entry's default weights (a Hub repo for
            the released names); or any source accepted by :func:`load_pretrained` (file, directory, URL, repo id).
        checkpoint_key: top-level key of official multi-model files (default: the entry's, else ``target_encoder``).
        overrides: ``EncoderConfig`` fields (``img_size``, ``use_activation_checkpointing``, ``rope_mode`` …).

    Returns:
        The encoder (a ``VideoViT`` for built-in names). With weights, the checkpoint must have the built
        architecture, otherwise ``jepa.hub.CheckpointError`` says which architecture it has.
    """
    from jepa.registry import ENCODERS

    entry = ENCODERS.get(name)
    if "frames" in entry.tags and pretrained not in (False, None):
        raise ValueError(
            f"create_encoder: {name!r} is a frame-level baseline whose weights are chosen by its overrides "
            "(timm_pretrained for timm_frames; base / base_pretrained for jepa_frames); pass pretrained=False"
        )
    model = entry.builder(**overrides)
    if pretrained is False or pretrained is None:
        return model
    source = entry.weights if pretrained is True else pretrained
    if source is None:
        raise ValueError(
            f"create_encoder: {name!r} has no default weights; pass pretrained=<file, directory, URL or Hub repo id>"
        )
    from jepa.hub.pretrained import load_encoder_weights

    load_encoder_weights(model, source, name=name, checkpoint_key=checkpoint_key or entry.checkpoint_key)
    return model


def load_pretrained(source: str | os.PathLike[str], **kwargs: Any) -> Pretrained:
    """Load an encoder and predictor from a Hub repo id, URL, official name, directory or file.

    See :func:`jepa.hub.load_pretrained` for the keyword arguments; returns ``Pretrained`` (``.encoder``,
    ``.predictor``, ``.layout``, ``.source``).
    """
    from jepa.hub.pretrained import load_pretrained as _load_pretrained

    return _load_pretrained(source, **kwargs)
