"""Probe checkpoint layouts: official ``evals/*.pt`` files and transformers ``VJEPA2ForVideoClassification``.

Spec: checkpoints.md §1.4 and §3.3.

* ``official``: ``{"classifiers": [state_dict, ...], "opt": [...], "scaler": ..., "epoch": ..., ...}``; each
  state dict has ``module.pooler.…`` / ``module.linear.…`` keys (fused ``attn.qkv`` and ``xattn.kv``). Our
  :class:`~jepa.probes.classifier.AttentiveClassifier` uses these keys without ``module.``.
* ``hf``: ``pooler.self_attention_layers.{k}.self_attn.{q,k,v,out}_proj``, ``pooler.cross_attention_layer.…``,
  ``classifier.…`` (split q/k/v), next to the ``vjepa2.…`` backbone keys.

The pure functions convert flat state dicts; :func:`load_probe_state_dict` and :func:`save_official_probe` do the
file I/O (``torch.load(weights_only=True)`` / safetensors only).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from jepa.hub.layouts import merge_fused, split_fused
from jepa.probes.classifier import ProbeConfig

StateDict = dict[str, torch.Tensor]
ProbeLayout = Literal["official", "hf"]

OFFICIAL_PREFIX = "module."

_SELF = re.compile(r"^pooler\.blocks\.(\d+)\.(.+)$")
_HF_SELF = re.compile(r"^pooler\.self_attention_layers\.(\d+)\.(.+)$")
_NORM = re.compile(r"^norm([12])\.(weight|bias)$")
_HF_NORM = re.compile(r"^layer_norm([12])\.(weight|bias)$")


# ---------------------------------------------------------------------------------------------- official file
def official_probe_state_dict(checkpoint: Mapping[str, Any], index: int = 0) -> StateDict:
    """One classifier of an official probe file, with the ``module.`` prefix removed.

    Args:
        checkpoint: the loaded file: a dict with ``classifiers`` (list of state dicts), or directly one state dict.
        index: which entry of ``classifiers`` (the released files are used with index 0).

    Returns:
        Prefix-free state dict (``pooler.…``, ``linear.…``).

    Raises:
        KeyError / IndexError: no ``classifiers`` list, or ``index`` out of range (the count is given).
    """
    if "classifiers" in checkpoint:
        classifiers = checkpoint["classifiers"]
        if not isinstance(classifiers, Sequence) or not classifiers:
            raise KeyError(f"official probe: 'classifiers' must be a non-empty list, got {type(classifiers).__name__}")
        if not -len(classifiers) <= index < len(classifiers):
            raise IndexError(f"official probe: classifier index {index} out of range ({len(classifiers)} saved)")
        state = classifiers[index]
    elif checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state = checkpoint
    else:
        raise KeyError(
            "official probe: expected a dict with a 'classifiers' list or a flat state dict, "
            f"got keys {list(checkpoint)[:8]}"
        )
    return {(k[len(OFFICIAL_PREFIX) :] if k.startswith(OFFICIAL_PREFIX) else k): v for k, v in state.items()}


def to_official_probe_checkpoint(
    classifiers: Sequence[Mapping[str, torch.Tensor]],
    epoch: int = 0,
    batch_size: int | None = None,
    world_size: int = 1,
) -> dict[str, Any]:
    """Build the official probe file content from prefix-free classifier state dicts (``module.`` added).

    ``opt`` is an empty list and ``scaler`` ``None`` (optimizer states are not exported).
    """
    return {
        "classifiers": [
            {OFFICIAL_PREFIX + k: v.detach().cpu().contiguous() for k, v in sd.items()} for sd in classifiers
        ],
        "opt": [],
        "scaler": None,
        "epoch": int(epoch),
        "batch_size": batch_size,
        "world_size": int(world_size),
    }


# ---------------------------------------------------------------------------------------------- official <-> hf
def official_probe_to_hf(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Prefix-free official classifier keys → transformers ``VJEPA2ForVideoClassification`` head keys (§3.3).

    Fused ``attn.qkv`` is split into ``{q,k,v}_proj``, ``xattn.kv`` into ``k_proj`` / ``v_proj``. Keys without a
    transformers equivalent (e.g. EK100's ``verb_classifier``) raise ``KeyError`` naming them.
    """
    out: StateDict = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        key = key[len(OFFICIAL_PREFIX) :] if key.startswith(OFFICIAL_PREFIX) else key
        if key == "pooler.query_tokens":
            out[key] = value
        elif key.startswith("linear."):
            out["classifier." + key[len("linear.") :]] = value
        elif key.startswith("pooler.cross_attention_block."):
            rest = key[len("pooler.cross_attention_block.") :]
            base = "pooler.cross_attention_layer"
            if match := _NORM.match(rest):
                out[f"{base}.layer_norm{match[1]}.{match[2]}"] = value
            elif rest.startswith("mlp."):
                out[f"{base}.{rest}"] = value
            elif rest in ("xattn.q.weight", "xattn.q.bias"):
                out[f"{base}.cross_attn.q_proj.{rest.rsplit('.', 1)[1]}"] = value
            elif rest in ("xattn.kv.weight", "xattn.kv.bias"):
                suffix = rest.rsplit(".", 1)[1]
                for name, part in zip("kv", split_fused(value, 2), strict=True):
                    out[f"{base}.cross_attn.{name}_proj.{suffix}"] = part
            else:
                unknown.append(key)
        elif match := _SELF.match(key):
            base, rest = f"pooler.self_attention_layers.{match[1]}", match[2]
            if norm := _NORM.match(rest):
                out[f"{base}.layer_norm{norm[1]}.{norm[2]}"] = value
            elif rest.startswith("mlp."):
                out[f"{base}.{rest}"] = value
            elif rest in ("attn.qkv.weight", "attn.qkv.bias"):
                suffix = rest.rsplit(".", 1)[1]
                for name, part in zip("qkv", split_fused(value, 3), strict=True):
                    out[f"{base}.self_attn.{name}_proj.{suffix}"] = part
            elif rest in ("attn.proj.weight", "attn.proj.bias"):
                out[f"{base}.self_attn.out_proj.{rest.rsplit('.', 1)[1]}"] = value
            else:
                unknown.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f"official_probe_to_hf: keys with no transformers equivalent: {sorted(unknown)}")
    return out


def hf_probe_to_official(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """transformers classification keys → prefix-free official keys (inverse of :func:`official_probe_to_hf`).

    Only ``pooler.…`` and ``classifier.…`` keys are read; the ``vjepa2.…`` backbone keys are ignored (the encoder
    is loaded by :mod:`jepa.hub`). Unknown keys under ``pooler.`` raise ``KeyError``.
    """
    out: StateDict = {}
    pending: dict[tuple[str, str], dict[str, torch.Tensor]] = {}  # (fused target, weight|bias) -> {q: t, ...}
    unknown: list[str] = []
    for key, value in state_dict.items():
        if key.startswith("classifier."):
            out["linear." + key[len("classifier.") :]] = value
        elif key == "pooler.query_tokens":
            out[key] = value
        elif key.startswith("pooler.cross_attention_layer."):
            rest = key[len("pooler.cross_attention_layer.") :]
            base = "pooler.cross_attention_block"
            if match := _HF_NORM.match(rest):
                out[f"{base}.norm{match[1]}.{match[2]}"] = value
            elif rest.startswith("mlp."):
                out[f"{base}.{rest}"] = value
            elif match := re.match(r"^cross_attn\.([qkv])_proj\.(weight|bias)$", rest):
                if match[1] == "q":
                    out[f"{base}.xattn.q.{match[2]}"] = value
                else:
                    pending.setdefault((f"{base}.xattn.kv", match[2]), {})[match[1]] = value
            else:
                unknown.append(key)
        elif match := _HF_SELF.match(key):
            base, rest = f"pooler.blocks.{match[1]}", match[2]
            if norm := _HF_NORM.match(rest):
                out[f"{base}.norm{norm[1]}.{norm[2]}"] = value
            elif rest.startswith("mlp."):
                out[f"{base}.{rest}"] = value
            elif proj := re.match(r"^self_attn\.([qkv])_proj\.(weight|bias)$", rest):
                pending.setdefault((f"{base}.attn.qkv", proj[2]), {})[proj[1]] = value
            elif proj := re.match(r"^self_attn\.out_proj\.(weight|bias)$", rest):
                out[f"{base}.attn.proj.{proj[1]}"] = value
            else:
                unknown.append(key)
        elif key.startswith("pooler."):
            unknown.append(key)
    for (target, suffix), parts in pending.items():
        names = "kv" if target.endswith(".kv") else "qkv"
        if set(parts) != set(names):
            raise KeyError(
                f"hf_probe_to_official: {target}.{suffix} needs {list(names)} projections, got {sorted(parts)}"
            )
        out[f"{target}.{suffix}"] = merge_fused([parts[name] for name in names])
    if unknown:
        raise KeyError(f"hf_probe_to_official: pooler keys with no official equivalent: {sorted(unknown)}")
    if not out:
        raise KeyError("hf_probe_to_official: no 'pooler.' / 'classifier.' keys (not a classification checkpoint?)")
    return out


def detect_probe_layout(state_dict: Mapping[str, torch.Tensor]) -> ProbeLayout:
    """``"official"`` (``pooler.blocks`` / ``linear``, maybe ``module.``) or ``"hf"`` (``classifier``, split q/k/v)."""
    keys = [k[len(OFFICIAL_PREFIX) :] if k.startswith(OFFICIAL_PREFIX) else k for k in state_dict]
    if any(
        k.startswith(("classifier.", "pooler.cross_attention_layer.", "pooler.self_attention_layers.")) for k in keys
    ):
        return "hf"
    if any(k.startswith(("linear.", "pooler.cross_attention_block.", "pooler.blocks.")) for k in keys):
        return "official"
    raise ValueError(f"detect_probe_layout: not an attentive-probe state dict; first keys: {keys[:6]}")


# ---------------------------------------------------------------------------------------------- config
def infer_probe_config(
    state_dict: Mapping[str, torch.Tensor], num_heads: int = 16, norm_eps: float = 1e-5
) -> ProbeConfig:
    """Architecture of a prefix-free official classifier state dict (heads and LN eps cannot be read from weights).

    Returns:
        :class:`ProbeConfig` with ``embed_dim`` / ``num_classes`` / ``depth`` / ``mlp_ratio`` / ``qkv_bias`` from
        the tensor shapes.
    """
    for required in ("pooler.query_tokens", "linear.weight", "pooler.cross_attention_block.mlp.fc1.weight"):
        if required not in state_dict:
            raise KeyError(f"infer_probe_config: missing {required!r}; keys start with {list(state_dict)[:6]}")
    embed_dim = state_dict["pooler.query_tokens"].shape[-1]
    num_classes = state_dict["linear.weight"].shape[0]
    blocks = {int(m[1]) for k in state_dict if (m := _SELF.match(k))}
    hidden = state_dict["pooler.cross_attention_block.mlp.fc1.weight"].shape[0]
    return ProbeConfig(
        embed_dim=embed_dim,
        num_classes=num_classes,
        num_heads=num_heads,
        depth=len(blocks) + 1,
        mlp_ratio=hidden / embed_dim,
        qkv_bias="pooler.cross_attention_block.xattn.q.bias" in state_dict,
        norm_eps=norm_eps,
    )


# ---------------------------------------------------------------------------------------------- files
def load_probe_state_dict(source: str | os.PathLike[str], index: int = 0) -> tuple[StateDict, ProbeLayout]:
    """Read one classifier from a probe file, returned as a prefix-free **official-layout** state dict.

    Args:
        source: an official ``.pt`` probe file (``classifiers`` list), a transformers ``model.safetensors`` (or a
            directory / Hub repo id / URL resolved by :func:`jepa.hub.sources.resolve_source`).
        index: entry of ``classifiers`` for official files.

    Returns:
        ``(state_dict, layout the file was in)``.
    """
    from jepa.hub.pretrained import read_safetensors, read_torch
    from jepa.hub.sources import resolve_source

    path = Path(resolve_source(source).path)
    if path.suffix == ".safetensors":
        raw: Any = read_safetensors(path)
    else:
        raw = read_torch(path)
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: expected a dict (official probe file or state dict), got {type(raw).__name__}")
    if "classifiers" in raw:
        return official_probe_state_dict(raw, index), "official"
    layout = detect_probe_layout(raw)
    if layout == "hf":
        return hf_probe_to_official(raw), "hf"
    return official_probe_state_dict(raw), "official"


def save_official_probe(
    path: str | os.PathLike[str], classifiers: Sequence[Mapping[str, torch.Tensor]], **metadata: Any
) -> Path:
    """Write prefix-free classifier state dicts as an official probe file (``module.`` keys, ``classifiers`` list).

    ``metadata``: ``epoch``, ``batch_size``, ``world_size`` (see :func:`to_official_probe_checkpoint`).
    The file loads with ``torch.load(weights_only=True)`` and in the official evaluation code.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(to_official_probe_checkpoint(classifiers, **metadata), path)
    return path
