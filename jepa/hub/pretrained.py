"""Load pretrained encoders / predictors from any layout and source; write the jepa format.

``load_pretrained(source)`` resolves the source (:mod:`jepa.hub.sources`), reads the weights without unpickling
(``torch.load(weights_only=True)`` or safetensors), detects the layout (:mod:`jepa.hub.layouts`), works out the
architecture (``config.json``, an ``architecture`` registry name, or inference from tensor shapes) and loads the
weights strictly, ignoring only ``pos_embed`` / ``predictor_pos_embed``. Problems are reported by key name in one
error.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jepa.encoders.config import EncoderConfig
from jepa.hub import layouts
from jepa.hub.layouts import IGNORED_OFFICIAL_KEYS, Layout, StateDict
from jepa.hub.sources import OFFICIAL_ARCHITECTURES, ResolvedSource, resolve_source
from jepa.predictors.config import PredictorConfig

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_KEYS = ("target_encoder", "encoder")  # spec checkpoints.md §1.2: probes use target_encoder
_WIDTH_NAMES = {192: "ViT-Ti", 384: "ViT-S", 768: "ViT-B", 1024: "ViT-L", 1280: "ViT-H", 1408: "ViT-g", 1664: "ViT-G"}
_MAX_LISTED_KEYS = 12


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file and the keys."""


@dataclass
class Checkpoint:
    """Weights read from a source, in official (prefix-free) key names, before any model is built.

    Attributes:
        encoder / predictor: state dicts (``None`` when absent).
        encoder_config / predictor_config: architecture recorded in the source (``config.json`` or the ``jepa``
            entry of a ``.pt`` we wrote), ``None`` when it must be inferred from shapes.
        layout: layout the weights were stored in.
        resolved: where the files came from.
        checkpoint_key: top-level key the encoder was taken from (official files).
        extra: tensors outside the encoder / predictor (heads of classification models, AC predictor).
    """

    encoder: StateDict | None
    predictor: StateDict | None
    encoder_config: EncoderConfig | None
    predictor_config: PredictorConfig | None
    layout: Layout
    resolved: ResolvedSource
    checkpoint_key: str | None = None
    extra: StateDict = field(default_factory=dict)


@dataclass
class Pretrained:
    """Models loaded by :func:`load_pretrained`.

    Attributes:
        encoder: the ``VideoViT`` (eval mode).
        predictor: the ``MaskPredictor`` (eval mode) or ``None`` when the source has none / it was not requested.
        layout: ``"official"``, ``"hf"`` or ``"jepa"``.
        source: the source string as given.
        path: the local weights file that was read.
        checkpoint_key: top-level key of an official file the encoder came from, else ``None``.
        encoder_config / predictor_config: the architectures that were built.
        extra: tensors not loaded into either model (classification heads, an action-conditioned predictor).
    """

    encoder: nn.Module
    predictor: nn.Module | None
    layout: Layout
    source: str
    path: Path
    checkpoint_key: str | None
    encoder_config: EncoderConfig
    predictor_config: PredictorConfig | None
    extra: StateDict = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        """The jepa-format config dict (``{"format": "jepa", "encoder": {...}, "predictor": {...} | None}``)."""
        return layouts.jepa_config(self.encoder_config, self.predictor_config)


# ---------------------------------------------------------------------------------------------- reading files
def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable JSON config ({error})") from error
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_safetensors(path: Path, map_location: str | torch.device = "cpu") -> StateDict:
    """All tensors of a ``.safetensors`` file or of the shards of a ``*.safetensors.index.json``.

    Unreadable files raise :class:`CheckpointError` naming the file.
    """
    from safetensors.torch import load_file

    if path.name.endswith(".index.json"):  # sharded: merge every shard listed in the index
        from jepa.hub.sources import shard_names

        merged: StateDict = {}
        for shard in shard_names(path):
            merged.update(read_safetensors(path.parent / shard, map_location))
        return merged
    try:
        return load_file(str(path), device=str(map_location))
    except Exception as error:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(error).__name__}: {error})") from error


def read_torch(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` of a ``.pt`` / ``.pth`` file (memory-mapped when the format allows).

    Never unpickles arbitrary objects; a corrupt file or one holding non-tensor objects raises
    :class:`CheckpointError` naming the file.
    """
    try:
        try:
            return torch.load(path, map_location=map_location, weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            return torch.load(path, map_location=map_location, weights_only=True)  # legacy (non-zip) format
    except Exception as error:
        raise CheckpointError(
            f"{path}: not a loadable PyTorch checkpoint with weights_only=True ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Expected an official V-JEPA 2 .pt file "
            "(dict of state dicts) or a state dict."
        ) from error


def _pick_official_key(obj: Mapping[str, Any], checkpoint_key: str | None, path: Path) -> str:
    available = [k for k, v in obj.items() if isinstance(v, Mapping) and k != "jepa"]
    if checkpoint_key is not None:
        if not isinstance(obj.get(checkpoint_key), Mapping):
            raise CheckpointError(f"{path}: checkpoint_key {checkpoint_key!r} not found; state dicts: {available}")
        return checkpoint_key
    for key in DEFAULT_CHECKPOINT_KEYS:
        if isinstance(obj.get(key), Mapping):
            return key
    raise CheckpointError(f"{path}: no 'target_encoder' or 'encoder' state dict; top-level keys: {list(obj)[:20]}")


def _is_ac_predictor(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("action_encoder.") for k in state_dict)


def _official_checkpoint(obj: Mapping[str, Any], resolved: ResolvedSource, checkpoint_key: str | None) -> Checkpoint:
    """Official top-level dict (``encoder`` / ``target_encoder`` / ``predictor`` …) → :class:`Checkpoint`."""
    path = resolved.path
    if "classifiers" in obj:
        raise CheckpointError(f"{path}: this is an attentive-probe checkpoint ('classifiers'), not an encoder")
    key = _pick_official_key(obj, checkpoint_key, path)
    encoder = layouts.strip_prefixes(_tensors(obj[key], path, key))
    predictor = None
    extra: StateDict = {}
    if isinstance(obj.get("predictor"), Mapping):
        predictor = layouts.strip_prefixes(_tensors(obj["predictor"], path, "predictor"))
        if _is_ac_predictor(predictor):  # V-JEPA 2-AC: not a mask predictor, hand it back untouched
            extra = layouts.add_prefix(predictor, "ac_predictor.")
            predictor = None
    encoder_config = predictor_config = None
    if isinstance(obj.get("jepa"), Mapping):  # written by jepa.hub.convert: architecture recorded
        encoder_config, predictor_config = layouts.parse_jepa_config(obj["jepa"])
    return Checkpoint(encoder, predictor, encoder_config, predictor_config, "official", resolved, key, extra)


def _tensors(obj: Any, path: Path, where: str) -> StateDict:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: {where!r} is a {type(obj).__name__}, expected a state dict")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: {where!r} holds non-tensor entries {bad[:5]}")
    return dict(obj)


def _flat_checkpoint(
    sd: StateDict, config: dict[str, Any] | None, resolved: ResolvedSource, checkpoint_key: str | None
) -> Checkpoint:
    """A flat state dict in any layout (+ optional ``config.json``) → :class:`Checkpoint`.

    A ``config.json`` that is neither jepa nor transformers V-JEPA 2 is ignored (the layout then comes from the
    keys and the architecture from the shapes), as is a missing one.
    """
    path = resolved.path
    layout = None
    if config is not None:
        try:
            layout = layouts.detect_layout(config)
        except ValueError:
            log.warning("%s: ignoring config.json %s (not a jepa or vjepa2 config)", path, resolved.config_path)
            config = None
    if layout is None:
        try:
            layout = layouts.detect_layout(sd)
        except ValueError as error:
            raise CheckpointError(f"{path}: {error}") from error
    encoder_config = predictor_config = None
    extra: StateDict = {}
    try:
        if layout == "jepa":
            if config is not None:
                encoder_config, predictor_config = layouts.parse_jepa_config(config)
            parts = layouts.from_jepa_state_dict(sd)
            encoder, predictor = parts["encoder"], parts["predictor"]
        elif layout == "hf":
            parts = layouts.hf_to_official(sd)
            encoder, predictor, extra = parts["encoder"], parts["predictor"], parts["extra"]
            if config is not None:
                encoder_config, predictor_config = layouts.hf_config_to_configs(config)
        else:
            encoder, predictor = layouts.split_official_state_dict(layouts.strip_prefixes(sd))
            predictor = predictor or None
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path} ({layout} layout, config {resolved.config_path}): {error}") from error
    if predictor is None:
        predictor_config = None
    if checkpoint_key is not None:
        log.info("%s: checkpoint_key=%r ignored, the file holds a single %s state dict", path, checkpoint_key, layout)
    return Checkpoint(encoder or None, predictor, encoder_config, predictor_config, layout, resolved, None, extra)


def read_checkpoint(
    source: str | os.PathLike[str],
    *,
    checkpoint_key: str | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Resolve ``source`` and read its weights into official key names (no model is built).

    Args:
        source: Hub repo id, URL, official short name, directory or file (see :func:`resolve_source`).
        checkpoint_key: official files: top-level key holding the encoder (default ``target_encoder``, falling
            back to ``encoder``).
        revision / cache_dir: see :func:`jepa.hub.sources.resolve_source`.
        map_location: device the tensors are read to.
    """
    resolved = resolve_source(source, revision=revision, cache_dir=cache_dir)
    path = resolved.path
    config = _read_json(resolved.config_path) if resolved.config_path is not None else None
    if path.suffix == ".safetensors" or path.name.endswith(".safetensors.index.json"):
        return _flat_checkpoint(read_safetensors(path, map_location), config, resolved, checkpoint_key)
    obj = read_torch(path, map_location)
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, expected a dict of state dicts or a state dict")
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _flat_checkpoint(dict(obj), None, resolved, checkpoint_key)
    return _official_checkpoint(obj, resolved, checkpoint_key)


# ---------------------------------------------------------------------------------------------- architecture
def _encoder_shapes(sd: Mapping[str, torch.Tensor], path: Path) -> dict[str, int]:
    """Shape-determined encoder numbers of official-layout weights (what any architecture must agree with)."""
    key = "patch_embed.proj.weight"
    if key not in sd:
        raise CheckpointError(f"{path}: encoder weights have no {key!r}; first keys: {list(sd)[:6]}")
    embed_dim, in_chans, tubelet, patch, _ = sd[key].shape
    blocks = {int(m[1]) for k in sd if (m := re.match(r"^blocks\.(\d+)\.", k))}
    fc1 = sd.get("blocks.0.mlp.fc1.weight")
    return {
        "embed_dim": embed_dim,
        "depth": max(blocks) + 1 if blocks else 0,
        "mlp_hidden_dim": fc1.shape[0] if fc1 is not None else -1,
        "patch_size": patch,
        "tubelet_size": tubelet,
        "in_chans": in_chans,
    }


def _describe(shapes: Mapping[str, int]) -> str:
    name = _WIDTH_NAMES.get(shapes["embed_dim"])
    return f"embed_dim {shapes['embed_dim']} / depth {shapes['depth']}" + (f" ({name})" if name else "")


def check_encoder_architecture(
    encoder_sd: Mapping[str, torch.Tensor],
    expected: EncoderConfig,
    *,
    expected_name: str,
    path: Path | str,
    recorded: EncoderConfig | None = None,
) -> None:
    """Refuse weights of another architecture than ``expected``, saying which (e.g. ViT-L weights for vit_huge).

    Args:
        encoder_sd: official-layout encoder weights.
        expected: the architecture the caller wants.
        expected_name: how to call it in the message (a registry name).
        path: the file, for the message.
        recorded: architecture recorded next to the weights; its ``num_heads`` is checked too.
    """
    shapes = _encoder_shapes(encoder_sd, Path(path))
    wanted = {name: getattr(expected, name) for name in shapes}
    if recorded is not None and recorded.num_heads != expected.num_heads:
        shapes["num_heads"], wanted["num_heads"] = recorded.num_heads, expected.num_heads
    if shapes != wanted:
        details = ", ".join(f"{k} {shapes[k]} vs {wanted[k]}" for k in shapes if shapes[k] != wanted[k])
        raise CheckpointError(
            f"{path}: checkpoint has {_describe(shapes)}; {expected_name} expects "
            f"{wanted['embed_dim']} / {wanted['depth']} (differences: {details})"
        )


def architecture_config(name: str, **overrides: Any) -> EncoderConfig:
    """``EncoderConfig`` of registry encoder ``name`` without allocating weights (built on the meta device)."""
    import jepa.encoders  # noqa: F401  (registers the presets)
    from jepa.registry import ENCODERS

    entry = ENCODERS.get(name)
    with torch.device("meta"):
        model = entry.builder(**overrides)
    config = getattr(model, "config", None)
    if not isinstance(config, EncoderConfig):
        raise TypeError(f"encoder {name!r} does not expose an EncoderConfig as .config")
    return config


def _resolve_encoder_config(
    ckpt: Checkpoint, architecture: str | None, num_heads: int | None
) -> tuple[EncoderConfig, str | None]:
    """(config to build, registry name it came from or None)."""
    from jepa.encoders.presets import infer_encoder_config
    from jepa.registry import ENCODERS

    assert ckpt.encoder is not None
    path = ckpt.resolved.path
    if architecture is None and ckpt.encoder_config is None:
        official = OFFICIAL_ARCHITECTURES.get(ckpt.resolved.official_name or "")
        if official is not None and official in ENCODERS:
            architecture = official
    if architecture is not None:
        config = architecture_config(architecture)
        if num_heads is not None:
            config = replace(config, num_heads=num_heads)
        check_encoder_architecture(
            ckpt.encoder, config, expected_name=architecture, path=path, recorded=ckpt.encoder_config
        )
        return config, architecture
    if ckpt.encoder_config is not None:
        config = ckpt.encoder_config
        return (replace(config, num_heads=num_heads) if num_heads is not None else config), None
    try:
        return infer_encoder_config(ckpt.encoder, num_heads=num_heads), None
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot infer the encoder architecture: {error}") from error


def _resolve_predictor_config(ckpt: Checkpoint, encoder_config: EncoderConfig) -> PredictorConfig:
    from jepa.predictors.presets import infer_predictor_config

    assert ckpt.predictor is not None
    if ckpt.predictor_config is not None:
        return ckpt.predictor_config
    try:  # the predictor's RoPE grid follows the encoder's crop (official hub: both built with the same img_size)
        return infer_predictor_config(
            ckpt.predictor,
            img_size=encoder_config.img_size,
            patch_size=encoder_config.patch_size,
            tubelet_size=encoder_config.tubelet_size,
            norm_eps=encoder_config.norm_eps,
        )
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{ckpt.resolved.path}: cannot infer the predictor architecture: {error}") from error


# ---------------------------------------------------------------------------------------------- loading
def _listing(title: str, items: list[str]) -> str:
    shown = items[:_MAX_LISTED_KEYS]
    more = f" … and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return f"{title} ({len(items)}): {', '.join(shown)}{more}"


def load_state_dict_checked(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    what: str,
    path: Path | str,
    strict: bool = True,
    ignore: frozenset[str] = IGNORED_OFFICIAL_KEYS,
    assign: bool = False,
) -> None:
    """Load ``state_dict`` into ``module``, reporting missing / unexpected / mis-shaped keys by name.

    Args:
        module: the model (may live on the ``meta`` device when ``assign`` is True).
        state_dict: official key names; keys in ``ignore`` are dropped first.
        what: ``"encoder"`` / ``"predictor"`` for the message.
        path: the checkpoint file, for the message.
        strict: raise :class:`CheckpointError` on any problem; otherwise log a warning and load what fits.
        assign: adopt the checkpoint tensors as parameters (no copy; used with meta-device models).
    """
    expected = module.state_dict()
    sd = {k: v for k, v in state_dict.items() if k not in ignore}
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    mismatched = sorted(
        f"{k} (checkpoint {tuple(sd[k].shape)}, model {tuple(expected[k].shape)})"
        for k in set(sd) & set(expected)
        if sd[k].shape != expected[k].shape
    )
    problems = [
        _listing(title, items)
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        message = f"{path}: {what} weights do not fit {type(module).__name__}: " + "; ".join(problems)
        if strict:
            raise CheckpointError(message)
        log.warning("%s (loading the rest, strict=False)", message)
    loadable = {
        k: (v.to(expected[k].dtype) if v.is_floating_point() else v)
        for k, v in sd.items()
        if k in expected and v.shape == expected[k].shape
    }
    module.load_state_dict(loadable, strict=False, assign=assign)


def _build_loaded(
    cls: type[nn.Module], config: Any, sd: StateDict, *, what: str, path: Path, strict: bool
) -> nn.Module:
    """Build ``cls(config)`` on the meta device and adopt the checkpoint tensors (no double allocation)."""
    with torch.device("meta"):
        module = cls(config)
    load_state_dict_checked(module, sd, what=what, path=path, strict=strict, assign=True)
    if any(t.is_meta for t in (*module.parameters(), *module.buffers())):  # keys left out (strict=False): real init
        real = cls(config)
        load_state_dict_checked(real, sd, what=what, path=path, strict=False)
        module = real
    return module.eval()


def load_pretrained(
    source: str | os.PathLike[str],
    *,
    checkpoint_key: str | None = None,
    architecture: str | None = None,
    num_heads: int | None = None,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
    with_predictor: bool = True,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> Pretrained:
    """Load a V-JEPA 2 encoder (and its mask predictor) from any source and layout.

    Args:
        source: Hub repo id (``facebook/vjepa2-vitl-fpc64-256``, ``org/name@rev``), http(s) URL, official short
            name (``vitl``), directory (jepa or transformers layout) or file (``.pt`` / ``.pth`` / ``.safetensors``).
        checkpoint_key: official files: which encoder (default ``target_encoder``, else ``encoder``).
        architecture: an encoder registry name (``vit_large``, ``vjepa2_vitg_384`` …) to build; the checkpoint
            must match it (else :class:`CheckpointError` saying which architecture the weights have).
        num_heads: heads when inferring from shapes an encoder of a width without an official head count.
        map_location: device of the returned models.
        strict: every key must match (``pos_embed`` / ``predictor_pos_embed`` excepted).
        with_predictor: also build the predictor when the source has one.
        revision: Hub revision. cache_dir: Hub cache (Hub ids) or jepa cache (URLs).

    Returns:
        :class:`Pretrained` with ``.encoder`` (``VideoViT``), ``.predictor`` (``MaskPredictor`` or ``None``),
        ``.layout``, ``.source``, ``.checkpoint_key`` and the configs; models in eval mode.
    """
    from jepa.encoders import VideoViT
    from jepa.predictors import MaskPredictor

    ckpt = read_checkpoint(
        source, checkpoint_key=checkpoint_key, revision=revision, cache_dir=cache_dir, map_location=map_location
    )
    path = ckpt.resolved.path
    if ckpt.encoder is None:
        raise CheckpointError(f"{path}: no encoder weights found (layout {ckpt.layout})")
    encoder_config, _ = _resolve_encoder_config(ckpt, architecture, num_heads)
    encoder = _build_loaded(VideoViT, encoder_config, ckpt.encoder, what="encoder", path=path, strict=strict)
    predictor = predictor_config = None
    if with_predictor and ckpt.predictor is not None:
        predictor_config = _resolve_predictor_config(ckpt, encoder_config)
        predictor = _build_loaded(
            MaskPredictor, predictor_config, ckpt.predictor, what="predictor", path=path, strict=strict
        )
    return Pretrained(
        encoder=encoder,
        predictor=predictor,
        layout=ckpt.layout,
        source=os.fspath(source),
        path=path,
        checkpoint_key=ckpt.checkpoint_key,
        encoder_config=encoder_config,
        predictor_config=predictor_config,
        extra=ckpt.extra,
    )


def load_encoder(source: str | os.PathLike[str], **kwargs: Any) -> nn.Module:
    """Only the encoder (``VideoViT``) of :func:`load_pretrained`; same keyword arguments."""
    return load_pretrained(source, with_predictor=False, **kwargs).encoder


def load_encoder_weights(
    model: nn.Module,
    source: str | os.PathLike[str],
    *,
    name: str | None = None,
    checkpoint_key: str | None = None,
    strict: bool = True,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> nn.Module:
    """Load the encoder weights of ``source`` into an already built ``VideoViT`` (used by ``create_encoder``).

    The checkpoint must have the model's architecture (:func:`check_encoder_architecture`); ``name`` is how the
    model is called in that message.
    """
    ckpt = read_checkpoint(source, checkpoint_key=checkpoint_key, revision=revision, cache_dir=cache_dir)
    path = ckpt.resolved.path
    if ckpt.encoder is None:
        raise CheckpointError(f"{path}: no encoder weights found (layout {ckpt.layout})")
    config = getattr(model, "config", None)
    if isinstance(config, EncoderConfig):
        check_encoder_architecture(
            ckpt.encoder, config, expected_name=name or type(model).__name__, path=path, recorded=ckpt.encoder_config
        )
    device = next(model.parameters()).device
    sd = {k: v.to(device) for k, v in ckpt.encoder.items()}
    load_state_dict_checked(model, sd, what="encoder", path=path, strict=strict)
    return model


# ---------------------------------------------------------------------------------------------- writing
def save_pretrained(directory: str | os.PathLike[str], encoder: nn.Module, predictor: nn.Module | None = None) -> Path:
    """Write ``encoder`` (and ``predictor``) in the jepa format: ``config.json`` + ``model.safetensors``.

    ``config.json`` is ``{"format": "jepa", "format_version": 1, "encoder": {...}, "predictor": {...} | null}``;
    tensors are stored as ``encoder.<official key>`` / ``predictor.<official key>``. Returns the directory.
    """
    from safetensors.torch import save_file

    encoder_config = getattr(encoder, "config", None)
    predictor_config = getattr(predictor, "config", None) if predictor is not None else None
    if not isinstance(encoder_config, EncoderConfig):
        raise TypeError(f"save_pretrained: encoder {type(encoder).__name__} has no EncoderConfig .config")
    if predictor is not None and not isinstance(predictor_config, PredictorConfig):
        raise TypeError(f"save_pretrained: predictor {type(predictor).__name__} has no PredictorConfig .config")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = layouts.to_jepa_state_dict(
        _cpu_state_dict(encoder), _cpu_state_dict(predictor) if predictor is not None else None
    )
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    with open(out / "config.json", "w", encoding="utf-8") as handle:
        json.dump(layouts.jepa_config(encoder_config, predictor_config), handle, indent=2)
        handle.write("\n")
    return out


def _cpu_state_dict(module: nn.Module) -> StateDict:
    """Detached, contiguous CPU tensors (safetensors refuses non-contiguous storage)."""
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
