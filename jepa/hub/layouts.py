"""Checkpoint layouts (official / transformers / jepa) as pure functions on state dicts and configs.

No file I/O here. Three layouts exist (see docs/architecture.md, "Checkpoint formats"):

* ``official``: the ``.pt`` files of facebookresearch/vjepa2. Keys carry ``module.`` / ``backbone.`` prefixes,
  attention uses a fused ``qkv`` Linear and the predictor keeps its mask tokens in a ``ParameterList``
  (``mask_tokens.{k}``, each ``(1, 1, Dp)``). ``VideoViT`` / ``MaskPredictor`` use these key names (prefix-free).
* ``hf``: transformers ``VJEPA2Model`` (``encoder.layer.{i}.attention.{query,key,value}``, stacked
  ``predictor.embeddings.mask_tokens (n, 1, 1, Dp)``); classification models add ``vjepa2.`` to the backbone.
* ``jepa``: our own format, ``encoder.<official key>`` / ``predictor.<official key>`` plus a ``config.json``.

Key mapping reference: spec checkpoints.md §3.1 (encoder) and §3.2 (predictor). The fused-tensor helpers
(:func:`split_fused`, :func:`merge_fused`) are shared with the probe layouts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from jepa.encoders.config import EncoderConfig
from jepa.predictors.config import PredictorConfig

Layout = Literal["official", "hf", "jepa"]
StateDict = dict[str, torch.Tensor]

#: Keys present in some official checkpoints that RoPE models do not use; every loader ignores exactly these.
IGNORED_OFFICIAL_KEYS = frozenset({"pos_embed", "predictor_pos_embed"})

#: Top-level keys of an official multi-model ``.pt`` that hold state dicts.
OFFICIAL_MODEL_KEYS = ("encoder", "target_encoder", "predictor")

#: First path component of every official predictor key (anything else in a flat state dict is encoder).
PREDICTOR_KEY_ROOTS = frozenset(
    {"predictor_embed", "mask_tokens", "predictor_blocks", "predictor_norm", "predictor_proj", "predictor_pos_embed"}
)

HF_MODEL_TYPE = "vjepa2"
HF_ARCHITECTURE = "VJEPA2Model"
HF_CLASSIFICATION_PREFIX = "vjepa2."
JEPA_FORMAT = "jepa"
JEPA_FORMAT_VERSION = 1

_QKV_NAMES = ("query", "key", "value")


# ---------------------------------------------------------------------------------------------- generic helpers
def strip_prefixes(
    state_dict: Mapping[str, torch.Tensor], prefixes: Sequence[str] = ("module.", "backbone.")
) -> StateDict:
    """Remove **every** occurrence of each of ``prefixes`` from every key (official loading rule, spec §1.1).

    ``module.backbone.blocks.0.norm1.weight`` → ``blocks.0.norm1.weight``. Two keys that collide after stripping
    are an error (the checkpoint would be ambiguous).
    """
    out: StateDict = {}
    for key, value in state_dict.items():
        new_key = key
        for prefix in prefixes:
            new_key = new_key.replace(prefix, "")
        if new_key in out:
            raise ValueError(f"strip_prefixes: keys collide after removing {list(prefixes)}: {new_key!r}")
        out[new_key] = value
    return out


def add_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """``{prefix + key: value}`` for every entry."""
    return {prefix + key: value for key, value in state_dict.items()}


def split_fused(tensor: torch.Tensor, parts: int) -> list[torch.Tensor]:
    """Split a fused projection along dim 0 into ``parts`` equal chunks (``qkv`` → q, k, v; ``kv`` → k, v).

    Args:
        tensor: weight ``(parts·D, D_in)`` or bias ``(parts·D,)``.
        parts: number of fused projections.

    Returns:
        ``parts`` contiguous tensors, each ``(D, D_in)`` / ``(D,)``, not sharing memory with ``tensor`` (so they
        can be written by safetensors).
    """
    if tensor.shape[0] % parts:
        raise ValueError(f"split_fused: dim 0 of shape {tuple(tensor.shape)} is not divisible by {parts}")
    return [chunk.clone() for chunk in tensor.chunk(parts, dim=0)]


def merge_fused(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate projections along dim 0 (inverse of :func:`split_fused`): q, k, v → ``qkv`` ``(3D, ...)``."""
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"merge_fused: parts must have equal shapes, got {[tuple(t.shape) for t in tensors]}")
    return torch.cat(list(tensors), dim=0)


def split_official_state_dict(state_dict: Mapping[str, torch.Tensor]) -> tuple[StateDict, StateDict]:
    """Split a flat, prefix-free official state dict into (encoder keys, predictor keys) by key root."""
    encoder: StateDict = {}
    predictor: StateDict = {}
    for key, value in state_dict.items():
        (predictor if key.split(".", 1)[0] in PREDICTOR_KEY_ROOTS else encoder)[key] = value
    return encoder, predictor


# ---------------------------------------------------------------------------------------------- layout detection
def _is_tensor_mapping(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def detect_layout(obj: Any) -> Layout:
    """Which layout ``obj`` is in.

    Args:
        obj: one of
            * a top-level official checkpoint dict (``encoder`` / ``target_encoder`` / ``predictor`` state dicts);
            * a flat state dict (str → Tensor) in any of the three layouts;
            * a ``config.json`` dict (``{"format": "jepa", ...}`` or ``{"model_type": "vjepa2", ...}``).

    Returns:
        ``"official"``, ``"hf"`` or ``"jepa"``.

    Raises:
        ValueError: naming a few keys when nothing matches.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"detect_layout: expected a dict (checkpoint, state dict or config), got {type(obj).__name__}")
    if obj.get("format") == JEPA_FORMAT:
        return "jepa"
    if obj.get("model_type") == HF_MODEL_TYPE:
        return "hf"
    if any(isinstance(obj.get(key), Mapping) for key in OFFICIAL_MODEL_KEYS) and not _is_tensor_mapping(obj):
        return "official"
    if _is_tensor_mapping(obj):
        keys = list(obj)
        if any(
            re.match(r"^(vjepa2\.)?(encoder\.(layer|embeddings|layernorm)|predictor\.(layer|embeddings))\.", k)
            for k in keys
        ):
            return "hf"
        if any(re.match(r"^(encoder\.(patch_embed|blocks|norm)|predictor\.(predictor_|mask_tokens))", k) for k in keys):
            return "jepa"
        stripped = [k.replace("module.", "").replace("backbone.", "") for k in keys]
        official_roots = {"patch_embed", "blocks", "norm", "pos_embed"} | PREDICTOR_KEY_ROOTS
        if any(k.split(".", 1)[0] in official_roots for k in stripped):
            return "official"
    sample = list(obj)[:6]
    raise ValueError(
        f"detect_layout: not a V-JEPA 2 checkpoint in a known layout (official, hf, jepa); first keys: {sample}"
    )


# ---------------------------------------------------------------------------------------------- official <-> hf
_ENC_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_PRED_BLOCK = re.compile(r"^predictor_blocks\.(\d+)\.(.+)$")
_MASK_TOKEN = re.compile(r"^mask_tokens\.(\d+)$")


def _block_to_hf(block_prefix: str, index: str, rest: str, value: torch.Tensor, out: StateDict) -> bool:
    """Map one official block key (``attn.qkv.weight`` …) under ``block_prefix.{index}``; False if unknown."""
    base = f"{block_prefix}.{index}"
    if rest in ("attn.qkv.weight", "attn.qkv.bias"):
        suffix = rest.rsplit(".", 1)[1]
        for name, part in zip(_QKV_NAMES, split_fused(value, 3), strict=True):
            out[f"{base}.attention.{name}.{suffix}"] = part
        return True
    if rest.startswith("attn.proj."):
        out[f"{base}.attention.{rest[len('attn.') :]}"] = value
        return True
    if rest.split(".", 1)[0] in ("norm1", "norm2", "mlp"):
        out[f"{base}.{rest}"] = value
        return True
    return False


def official_encoder_to_hf(encoder_sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Official encoder keys (prefix-free) → transformers ``VJEPA2Model`` keys (``encoder.…``), spec §3.1.

    ``pos_embed`` is dropped. Unknown keys raise ``KeyError`` naming them.
    """
    out: StateDict = {}
    unknown: list[str] = []
    for key, value in encoder_sd.items():
        if key in IGNORED_OFFICIAL_KEYS:
            continue
        if key.startswith("patch_embed.proj."):
            out["encoder.embeddings.patch_embeddings." + key[len("patch_embed.") :]] = value
        elif key.startswith("norm."):
            out["encoder.layernorm." + key[len("norm.") :]] = value
        elif (match := _ENC_BLOCK.match(key)) and _block_to_hf("encoder.layer", match[1], match[2], value, out):
            pass
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f"official_encoder_to_hf: keys with no transformers equivalent: {sorted(unknown)}")
    return out


def official_predictor_to_hf(predictor_sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Official predictor keys → transformers keys (``predictor.…``), spec §3.2.

    The ``mask_tokens.{k}`` entries (each ``(1, 1, Dp)``) are stacked in index order into
    ``predictor.embeddings.mask_tokens`` ``(n, 1, 1, Dp)``; ``predictor_pos_embed`` is dropped.
    """
    out: StateDict = {}
    tokens: dict[int, torch.Tensor] = {}
    unknown: list[str] = []
    simple = {
        "predictor_embed.": "predictor.embeddings.predictor_embeddings.",
        "predictor_norm.": "predictor.layernorm.",
        "predictor_proj.": "predictor.proj.",
    }
    for key, value in predictor_sd.items():
        if key in IGNORED_OFFICIAL_KEYS:
            continue
        if match := _MASK_TOKEN.match(key):
            tokens[int(match[1])] = value
            continue
        prefix = next((p for p in simple if key.startswith(p)), None)
        if prefix is not None:
            out[simple[prefix] + key[len(prefix) :]] = value
        elif (match := _PRED_BLOCK.match(key)) and _block_to_hf("predictor.layer", match[1], match[2], value, out):
            pass
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f"official_predictor_to_hf: keys with no transformers equivalent: {sorted(unknown)}")
    if tokens:
        if sorted(tokens) != list(range(len(tokens))):
            raise KeyError(f"official_predictor_to_hf: mask_tokens indices are not 0..n-1: {sorted(tokens)}")
        # n × (1, 1, Dp) → (n, 1, 1, Dp)
        out["predictor.embeddings.mask_tokens"] = torch.stack([tokens[k] for k in range(len(tokens))], dim=0)
    return out


def official_to_hf(
    encoder_sd: Mapping[str, torch.Tensor], predictor_sd: Mapping[str, torch.Tensor] | None = None
) -> StateDict:
    """Official (prefix-free) encoder and optional predictor state dicts → one ``VJEPA2Model`` state dict.

    With ``predictor_sd`` omitted, predictor keys found in ``encoder_sd`` (a flat dict holding both models,
    told apart by :data:`PREDICTOR_KEY_ROOTS`) are converted as the predictor.
    """
    if predictor_sd is None:
        encoder_sd, found = split_official_state_dict(encoder_sd)
        predictor_sd = found or None
    out = official_encoder_to_hf(encoder_sd)
    if predictor_sd is not None:
        out.update(official_predictor_to_hf(predictor_sd))
    return out


def _hf_block_to_official(
    layer_prefix: str, block_prefix: str, sd: Mapping[str, torch.Tensor], out: StateDict, leftovers: StateDict
) -> None:
    """Map ``{layer_prefix}.{i}.…`` keys of ``sd`` to ``{block_prefix}.{i}.…`` in ``out`` (qkv merged)."""
    pattern = re.compile(rf"^{re.escape(layer_prefix)}\.(\d+)\.(.+)$")
    pending: dict[tuple[str, str], dict[str, torch.Tensor]] = {}  # (layer, weight|bias) -> {query: t, ...}
    for key, value in sd.items():
        match = pattern.match(key)
        if not match:
            continue
        index, rest = match[1], match[2]
        qkv = re.match(r"^attention\.(query|key|value)\.(weight|bias)$", rest)
        if qkv:
            pending.setdefault((index, qkv[2]), {})[qkv[1]] = value
        elif rest.startswith("attention.proj."):
            out[f"{block_prefix}.{index}.attn.{rest[len('attention.') :]}"] = value
        elif rest.split(".", 1)[0] in ("norm1", "norm2", "mlp"):
            out[f"{block_prefix}.{index}.{rest}"] = value
        else:
            leftovers[key] = value
    for (index, suffix), parts in pending.items():
        if set(parts) == set(_QKV_NAMES):
            out[f"{block_prefix}.{index}.attn.qkv.{suffix}"] = merge_fused([parts[n] for n in _QKV_NAMES])
        else:  # incomplete triple: keep the pieces so the strict loader names them (and the missing qkv key)
            for name, value in parts.items():
                leftovers[f"{layer_prefix}.{index}.attention.{name}.{suffix}"] = value


def hf_to_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """transformers ``VJEPA2Model`` / ``VJEPA2ForVideoClassification`` keys → official (prefix-free) keys.

    Args:
        state_dict: transformers state dict; the ``vjepa2.`` prefix of classification models is removed first.

    Returns:
        ``{"encoder": StateDict, "predictor": StateDict | None, "extra": StateDict}``. ``predictor`` is ``None``
        when the state dict has no ``predictor.`` keys; ``extra`` holds keys outside the backbone (``pooler.…``,
        ``classifier.…`` of classification models) unchanged. Keys under ``encoder.`` / ``predictor.`` that have
        no official equivalent are kept under their transformers name (without the ``encoder.`` /
        ``predictor.`` namespace) so a strict loader reports them as unexpected.
    """
    sd = dict(state_dict)
    if any(k.startswith(HF_CLASSIFICATION_PREFIX) for k in sd):
        sd = {
            (k[len(HF_CLASSIFICATION_PREFIX) :] if k.startswith(HF_CLASSIFICATION_PREFIX) else k): v
            for k, v in sd.items()
        }
    encoder_hf = {k[len("encoder.") :]: v for k, v in sd.items() if k.startswith("encoder.")}
    predictor_hf = {k[len("predictor.") :]: v for k, v in sd.items() if k.startswith("predictor.")}
    extra = {k: v for k, v in sd.items() if not k.startswith(("encoder.", "predictor."))}

    encoder: StateDict = {}
    leftovers: StateDict = {}
    for key, value in encoder_hf.items():
        if key.startswith("embeddings.patch_embeddings.proj."):
            encoder["patch_embed." + key[len("embeddings.patch_embeddings.") :]] = value
        elif key.startswith("layernorm."):
            encoder["norm." + key[len("layernorm.") :]] = value
        elif not key.startswith("layer."):
            leftovers[key] = value
    _hf_block_to_official("layer", "blocks", encoder_hf, encoder, leftovers)
    encoder.update(leftovers)

    predictor: StateDict | None = None
    if predictor_hf:
        predictor = {}
        leftovers = {}
        for key, value in predictor_hf.items():
            if key == "embeddings.mask_tokens":
                # (n, 1, 1, Dp) → n × (1, 1, Dp)
                for index, token in enumerate(value.unbind(0)):
                    predictor[f"mask_tokens.{index}"] = token.clone()
            elif key.startswith("embeddings.predictor_embeddings."):
                predictor["predictor_embed." + key[len("embeddings.predictor_embeddings.") :]] = value
            elif key.startswith("layernorm."):
                predictor["predictor_norm." + key[len("layernorm.") :]] = value
            elif key.startswith("proj."):
                predictor["predictor_proj." + key[len("proj.") :]] = value
            elif not key.startswith("layer."):
                leftovers[key] = value
        _hf_block_to_official("layer", "predictor_blocks", predictor_hf, predictor, leftovers)
        predictor.update(leftovers)
    return {"encoder": encoder, "predictor": predictor, "extra": extra}


# ---------------------------------------------------------------------------------------------- jepa layout
def to_jepa_state_dict(
    encoder_sd: Mapping[str, torch.Tensor], predictor_sd: Mapping[str, torch.Tensor] | None
) -> StateDict:
    """Official (prefix-free) state dicts → one jepa-layout dict (``encoder.<key>``, ``predictor.<key>``)."""
    out = add_prefix(encoder_sd, "encoder.")
    if predictor_sd is not None:
        out.update(add_prefix(predictor_sd, "predictor."))
    return out


def from_jepa_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, StateDict | None]:
    """Jepa-layout dict → ``{"encoder": StateDict, "predictor": StateDict | None}``; other roots raise."""
    encoder = {k[len("encoder.") :]: v for k, v in state_dict.items() if k.startswith("encoder.")}
    predictor = {k[len("predictor.") :]: v for k, v in state_dict.items() if k.startswith("predictor.")}
    unknown = sorted(k for k in state_dict if not k.startswith(("encoder.", "predictor.")))
    if unknown:
        raise KeyError(f"jepa layout: keys outside 'encoder.' / 'predictor.': {unknown[:10]}")
    return {"encoder": encoder, "predictor": predictor or None}


# ---------------------------------------------------------------------------------------------- configs
def jepa_config(encoder: EncoderConfig, predictor: PredictorConfig | None) -> dict[str, Any]:
    """The ``config.json`` of the jepa format."""
    return {
        "format": JEPA_FORMAT,
        "format_version": JEPA_FORMAT_VERSION,
        "encoder": encoder.to_dict(),
        "predictor": None if predictor is None else predictor.to_dict(),
    }


def parse_jepa_config(config: Mapping[str, Any]) -> tuple[EncoderConfig, PredictorConfig | None]:
    """Inverse of :func:`jepa_config`; checks ``format`` and ``format_version``."""
    if config.get("format") != JEPA_FORMAT:
        raise ValueError(f"not a jepa config: 'format' is {config.get('format')!r}, expected {JEPA_FORMAT!r}")
    version = config.get("format_version")
    if version != JEPA_FORMAT_VERSION:
        raise ValueError(f"jepa config format_version {version!r} is not supported (expected {JEPA_FORMAT_VERSION})")
    if not isinstance(config.get("encoder"), Mapping):
        raise ValueError("jepa config has no 'encoder' section")
    predictor = config.get("predictor")
    return EncoderConfig.from_dict(dict(config["encoder"])), (
        None if predictor is None else PredictorConfig.from_dict(dict(predictor))
    )


def _hf_patch_size(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ValueError(f"transformers config: non-square patch_size {value} is not supported")
        return int(value[0])
    return int(value)


def hf_config_to_configs(config: Mapping[str, Any]) -> tuple[EncoderConfig, PredictorConfig]:
    """transformers ``VJEPA2Config`` dict (``config.json``) → (``EncoderConfig``, ``PredictorConfig``).

    ``crop_size`` becomes ``img_size`` of both (it defines the transformers RoPE grid), ``frames_per_clip`` their
    ``num_frames``. Missing fields take the ``VJEPA2Config`` defaults (spec checkpoints.md §2.1).
    """
    if config.get("model_type", HF_MODEL_TYPE) != HF_MODEL_TYPE:
        raise ValueError(f"transformers config: model_type {config.get('model_type')!r}, expected {HF_MODEL_TYPE!r}")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"transformers config: hidden_act {config['hidden_act']!r} is not supported (only 'gelu')")
    patch = _hf_patch_size(config.get("patch_size", 16))
    common = {
        "patch_size": patch,
        "tubelet_size": int(config.get("tubelet_size", 2)),
        "img_size": int(config.get("crop_size", 256)),
        "num_frames": int(config.get("frames_per_clip", 64)),
        "qkv_bias": bool(config.get("qkv_bias", True)),
        "norm_eps": float(config.get("layer_norm_eps", 1e-6)),
    }
    hidden = int(config.get("hidden_size", 1024))
    encoder = EncoderConfig(
        embed_dim=hidden,
        depth=int(config.get("num_hidden_layers", 24)),
        num_heads=int(config.get("num_attention_heads", 16)),
        mlp_ratio=float(config.get("mlp_ratio", 4.0)),
        in_chans=int(config.get("in_chans", 3)),
        **common,
    )
    predictor = PredictorConfig(
        encoder_dim=hidden,
        embed_dim=int(config.get("pred_hidden_size", 384)),
        depth=int(config.get("pred_num_hidden_layers", 12)),
        num_heads=int(config.get("pred_num_attention_heads", 12)),
        mlp_ratio=float(config.get("pred_mlp_ratio", 4.0)),
        num_mask_tokens=int(config.get("pred_num_mask_tokens", 10)),
        zero_init_mask_tokens=bool(config.get("pred_zero_init_mask_tokens", True)),
        **common,
    )
    return encoder, predictor


def configs_to_hf_config(encoder: EncoderConfig, predictor: PredictorConfig | None) -> dict[str, Any]:
    """(``EncoderConfig``, ``PredictorConfig``) → transformers ``config.json`` dict for ``VJEPA2Model``.

    Raises ``ValueError`` for settings transformers cannot express (interleaved RoPE, another RoPE base, a
    predictor whose grid, tokenizer, epsilon or width differs from the encoder's).
    """
    problems = []
    for name, cfg in (("encoder", encoder), ("predictor", predictor)):
        if cfg is None:
            continue
        if cfg.rope_mode != "official":
            problems.append(f"{name}.rope_mode={cfg.rope_mode!r} (transformers only has the official RoPE)")
        if cfg.rope_theta != 10000.0:
            problems.append(f"{name}.rope_theta={cfg.rope_theta} (transformers hard-codes 10000)")
    if predictor is not None:
        for field in ("patch_size", "tubelet_size", "img_size", "qkv_bias", "norm_eps"):
            if getattr(predictor, field) != getattr(encoder, field):
                problems.append(
                    f"predictor.{field}={getattr(predictor, field)!r} != encoder.{field}={getattr(encoder, field)!r} "
                    "(transformers shares one value)"
                )
        if predictor.encoder_dim != encoder.embed_dim:
            problems.append(f"predictor.encoder_dim={predictor.encoder_dim} != encoder.embed_dim={encoder.embed_dim}")
    if problems:
        raise ValueError("cannot express in a transformers VJEPA2Config: " + "; ".join(problems))
    pred = predictor if predictor is not None else PredictorConfig(encoder_dim=encoder.embed_dim)
    return {
        "architectures": [HF_ARCHITECTURE],
        "model_type": HF_MODEL_TYPE,
        "patch_size": encoder.patch_size,
        "crop_size": encoder.img_size,
        "frames_per_clip": pred.num_frames if predictor is not None else encoder.num_frames,
        "tubelet_size": encoder.tubelet_size,
        "hidden_size": encoder.embed_dim,
        "in_chans": encoder.in_chans,
        "num_attention_heads": encoder.num_heads,
        "num_hidden_layers": encoder.depth,
        "drop_path_rate": 0.0,
        "mlp_ratio": encoder.mlp_ratio,
        "layer_norm_eps": encoder.norm_eps,
        "qkv_bias": encoder.qkv_bias,
        "attention_probs_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "num_pooler_layers": 3,
        "pred_hidden_size": pred.embed_dim,
        "pred_num_attention_heads": pred.num_heads,
        "pred_num_hidden_layers": pred.depth,
        "pred_num_mask_tokens": pred.num_mask_tokens,
        "pred_zero_init_mask_tokens": pred.zero_init_mask_tokens,
        "pred_mlp_ratio": pred.mlp_ratio,
    }
