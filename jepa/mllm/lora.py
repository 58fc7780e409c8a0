"""LoRA adapters on the language model of the video-QA head (optional ``peft``).

``peft`` is imported inside the functions, never at module import. The wrapped LLM keeps the base weights frozen
(``requires_grad=False``) and trains only the adapters (``lora_A`` / ``lora_B``, plus any ``modules_to_save``).

State-dict keys of a wrapped LLM differ from the plain model's: ``model.layers.0.self_attn.q_proj.weight`` becomes
``base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight`` and the adapters add
``…q_proj.lora_A.default.weight``. :func:`plain_key` maps a wrapped key back, so that a plain checkpoint (stage 1:
projector only, or a merged head) initialises a LoRA model (:func:`adapt_plain_state`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from torch import nn

__all__ = [
    "LORA_INSTALL_HINT",
    "adapt_plain_state",
    "apply_lora",
    "base_weight_keys",
    "has_lora_keys",
    "lora_config",
    "merge_lora",
    "plain_key",
    "require_peft",
]

LORA_INSTALL_HINT = "pip install 'jepa-lightning[mllm]' (or pip install peft)"
_WRAPPER_PREFIX = "base_model.model."
_ADAPTER_SEGMENT = re.compile(r"\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)(\.|$)")
_BASE_SEGMENTS = (".base_layer.", ".original_module.")


def require_peft(where: str = "VideoQATask") -> Any:
    """Import and return the ``peft`` module, or raise ``ImportError`` saying how to install it."""
    try:
        import peft
    except ImportError as error:  # also when sys.modules["peft"] is None
        raise ImportError(
            f"{where}: `lora` needs the `peft` package, which is not installed; {LORA_INSTALL_HINT}"
        ) from error
    return peft


def lora_config(fields: Mapping[str, Any], where: str = "VideoQATask") -> Any:
    """A ``peft.LoraConfig`` from ``fields`` (``r``, ``lora_alpha``, ``target_modules``, …), task type ``CAUSAL_LM``.

    Raises ``ValueError`` naming the offending field when ``peft`` rejects one.
    """
    peft = require_peft(where)
    fields = dict(fields)
    fields.setdefault("task_type", "CAUSAL_LM")
    try:
        return peft.LoraConfig(**fields)
    except TypeError as error:  # an unknown field
        raise ValueError(f"{where}: invalid `lora` fields {sorted(fields)}: {error}") from error


def apply_lora(llm: nn.Module, fields: Mapping[str, Any], where: str = "VideoQATask") -> nn.Module:
    """Wrap ``llm`` (a Hugging Face causal LM) with LoRA adapters; base weights are frozen in place.

    Enable gradient checkpointing on ``llm`` **before** wrapping: ``peft`` then makes the input embeddings require
    grad, so that checkpointed layers see a differentiable input even when nothing before the LLM trains.

    Returns:
        A ``peft.PeftModelForCausalLM`` sharing ``llm``'s modules.
    """
    peft = require_peft(where)
    return peft.get_peft_model(llm, lora_config(fields, where))


def merge_lora(llm: nn.Module) -> nn.Module:
    """Fold the adapters into the base weights (``W + scale · B A``) and return the plain causal LM."""
    if not hasattr(llm, "merge_and_unload"):
        raise ValueError(f"merge_lora: {type(llm).__name__} is not a peft LoRA model")
    return llm.merge_and_unload()


def base_weight_keys(llm: nn.Module, prefix: str = "") -> frozenset[str]:
    """State-dict keys (with ``prefix``) of the frozen base weights of a wrapped LLM: everything not trainable."""
    trainable = {name for name, parameter in llm.named_parameters() if parameter.requires_grad}
    return frozenset(f"{prefix}{key}" for key in llm.state_dict() if key not in trainable)


def plain_key(key: str) -> str | None:
    """The plain-model key of a wrapped-LLM key (without the LLM's own prefix); ``None`` for adapter weights."""
    if _ADAPTER_SEGMENT.search(key) or ".modules_to_save." in key:
        return None
    if key.startswith(_WRAPPER_PREFIX):
        key = key[len(_WRAPPER_PREFIX) :]
    for segment in _BASE_SEGMENTS:
        key = key.replace(segment, ".")
    return key


def has_lora_keys(keys: Iterable[str]) -> bool:
    """True when any key is a LoRA adapter weight."""
    return any(_ADAPTER_SEGMENT.search(key) for key in keys)


def adapt_plain_state(state: Mapping[str, Any], own_keys: Iterable[str], llm_prefix: str = "llm.") -> dict[str, Any]:
    """Rename plain LLM keys of ``state`` (``llm.model.…``) to this wrapped model's keys (``own_keys``).

    Keys outside ``llm_prefix`` and keys already in ``own_keys`` pass unchanged; a plain key of a module that LoRA
    wraps with ``modules_to_save`` fills both the frozen original and the trainable copy.
    """
    own = set(own_keys)
    targets: dict[str, list[str]] = {}
    for key in own:
        if not key.startswith(llm_prefix):
            continue
        inner = key[len(llm_prefix) :]
        if ".modules_to_save." in inner:
            base = re.sub(r"\.modules_to_save\.[^.]+\.", ".", inner)
            base = base[len(_WRAPPER_PREFIX) :] if base.startswith(_WRAPPER_PREFIX) else base
        else:
            base = plain_key(inner)
        if base is not None:
            targets.setdefault(llm_prefix + base, []).append(key)
    adapted: dict[str, Any] = {}
    for key, value in state.items():
        if key in own or key not in targets:
            adapted[key] = value
        else:
            for target in targets[key]:
                adapted[target] = value
    return adapted
