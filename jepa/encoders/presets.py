"""Encoder presets as data, their registry entries, and architecture inference from official weights.

Spec: encoder.md §1. "giant" means the released ViT-g: 22 heads × 64 (official ``vit_giant_xformers``); the
unused 16-head factory is ``vit_giant_16heads``. The ``vit_gigantic*`` presets keep the official MLP ratio 4
(QUIRK: the official factories misspell ``mpl_ratio`` so 64/13 is ignored).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import torch

from jepa.encoders.config import EncoderConfig
from jepa.encoders.vit import VideoViT
from jepa.registry import ENCODERS

PRESETS: dict[str, EncoderConfig] = {
    "vit_tiny": EncoderConfig(embed_dim=192, depth=12, num_heads=3),
    "vit_small": EncoderConfig(embed_dim=384, depth=12, num_heads=6),
    "vit_base": EncoderConfig(embed_dim=768, depth=12, num_heads=12),
    "vit_large": EncoderConfig(embed_dim=1024, depth=24, num_heads=16),
    "vit_huge": EncoderConfig(embed_dim=1280, depth=32, num_heads=16),
    "vit_giant": EncoderConfig(embed_dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11),
    "vit_giant_16heads": EncoderConfig(embed_dim=1408, depth=40, num_heads=16, mlp_ratio=48 / 11),
    "vit_gigantic": EncoderConfig(embed_dim=1664, depth=48, num_heads=26, mlp_ratio=4.0),
    "vit_gigantic_16heads": EncoderConfig(embed_dim=1664, depth=48, num_heads=16, mlp_ratio=4.0),
}
"""Architecture presets by name (``EncoderConfig`` instances; copy with ``dataclasses.replace`` before editing)."""

RELEASED: dict[str, tuple[str, dict[str, Any], str]] = {
    "vjepa2_vitl_256": ("vit_large", {"img_size": 256, "num_frames": 64}, "facebook/vjepa2-vitl-fpc64-256"),
    "vjepa2_vith_256": ("vit_huge", {"img_size": 256, "num_frames": 64}, "facebook/vjepa2-vith-fpc64-256"),
    "vjepa2_vitg_256": ("vit_giant", {"img_size": 256, "num_frames": 64}, "facebook/vjepa2-vitg-fpc64-256"),
    "vjepa2_vitg_384": ("vit_giant", {"img_size": 384, "num_frames": 64}, "facebook/vjepa2-vitg-fpc64-384"),
}
"""Released encoders: name → (architecture preset, config overrides, default weights on the Hugging Face Hub)."""

RELEASED_CHECKPOINT_KEY = "target_encoder"  # spec: checkpoints.md §1.2 (what every probe was trained on)

WIDTH_TO_HEADS: dict[int, int] = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 22, 1664: 26}
"""Heads of the official encoder of each width (1408 → 22: released ViT-g; 1664 → 26: ``vit_gigantic_xformers``)."""


def preset_config(name: str, **overrides: Any) -> EncoderConfig:
    """The ``EncoderConfig`` of preset or released ``name`` with field ``overrides`` applied."""
    if name in RELEASED:
        base, released_overrides, _ = RELEASED[name]
        overrides = {**released_overrides, **overrides}
        name = base
    if name not in PRESETS:
        raise KeyError(f"unknown encoder preset {name!r}; presets: {sorted(PRESETS)}, released: {sorted(RELEASED)}")
    known = {field.name for field in dataclasses.fields(EncoderConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"encoder preset {name!r}: unknown EncoderConfig fields {unknown}; known: {sorted(known)}")
    return dataclasses.replace(PRESETS[name], **overrides)


def _make_builder(name: str):
    def build(**overrides: Any) -> VideoViT:
        return VideoViT(preset_config(name, **overrides))

    cfg = preset_config(name)
    build.__name__ = name
    build.__doc__ = (
        f"{name}: video ViT, D={cfg.embed_dim}, depth={cfg.depth}, heads={cfg.num_heads}, "
        f"MLP {cfg.mlp_hidden_dim}, patch {cfg.patch_size}, tubelet {cfg.tubelet_size}, img {cfg.img_size}."
    )
    return build


def register_presets() -> None:
    """Register every preset and released name in :data:`jepa.registry.ENCODERS` (idempotent)."""
    for name in PRESETS:
        if name not in ENCODERS._entries:
            ENCODERS.add(name, _make_builder(name), tags=("architecture",))
    for name, (_, _, weights) in RELEASED.items():
        if name not in ENCODERS._entries:
            ENCODERS.add(
                name,
                _make_builder(name),
                weights=weights,
                checkpoint_key=RELEASED_CHECKPOINT_KEY,
                tags=("released", "vjepa2"),
            )


def _strip_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key.replace("module.", "").replace("backbone.", ""): value for key, value in state_dict.items()}


def infer_encoder_config(
    state_dict: Mapping[str, torch.Tensor], num_heads: int | None = None, **overrides: Any
) -> EncoderConfig:
    """Infer the architecture of official-layout encoder weights.

    Args:
        state_dict: official keys (``patch_embed.proj.weight``, ``blocks.{i}…``); ``module.`` / ``backbone.``
            prefixes are tolerated. Only shapes are read (works with ``meta`` tensors).
        num_heads: heads, when the width is not in :data:`WIDTH_TO_HEADS` or differs from the official choice.
        overrides: other ``EncoderConfig`` fields (``img_size``, ``num_frames``, ``rope_mode`` …).

    Returns:
        The ``EncoderConfig`` whose ``VideoViT`` loads ``state_dict`` strictly (after dropping ``pos_embed``).
    """
    sd = _strip_prefixes(state_dict)
    key = "patch_embed.proj.weight"
    if key not in sd:
        raise KeyError(
            f"infer_encoder_config: no {key!r} in the state dict (first keys: {list(sd)[:5]}); "
            "expected official encoder keys"
        )
    embed_dim, in_chans, tubelet, patch, patch_w = sd[key].shape
    if patch != patch_w:
        raise ValueError(f"infer_encoder_config: non-square patch kernel {tuple(sd[key].shape)} is not supported")
    block_ids = {int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))}
    if not block_ids:
        raise KeyError("infer_encoder_config: no 'blocks.{i}.*' keys in the state dict")
    depth = max(block_ids) + 1
    hidden = sd["blocks.0.mlp.fc1.weight"].shape[0]
    if num_heads is None:
        if embed_dim not in WIDTH_TO_HEADS:
            raise ValueError(
                f"infer_encoder_config: width {embed_dim} has no official head count "
                f"(known: {WIDTH_TO_HEADS}); pass num_heads="
            )
        num_heads = WIDTH_TO_HEADS[embed_dim]
    mlp_ratio = hidden / embed_dim
    for candidate in (4.0, 48 / 11, mlp_ratio):  # prefer the official literal when it gives the same width
        if int(embed_dim * candidate) == hidden:
            mlp_ratio = candidate
            break
    else:
        raise ValueError(f"infer_encoder_config: no mlp_ratio gives int({embed_dim}·r) == {hidden}")
    values: dict[str, Any] = {
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": num_heads,
        "mlp_ratio": mlp_ratio,
        "patch_size": patch,
        "tubelet_size": tubelet,
        "in_chans": in_chans,
        "qkv_bias": "blocks.0.attn.qkv.bias" in sd,
    }
    values.update(overrides)
    return EncoderConfig(**values)
