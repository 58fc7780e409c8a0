"""Predictor presets and architecture inference from official-layout weights (spec: encoder.md §10)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from jepa.predictors.config import PredictorConfig
from jepa.predictors.mask_predictor import MaskPredictor
from jepa.registry import PREDICTORS

PREDICTOR_WIDTH_TO_HEADS: dict[int, int] = {384: 12}
"""Heads of the official predictor of each width (every release: 384 wide, 12 heads of 32)."""


def vjepa2_predictor(**overrides: Any) -> MaskPredictor:
    """vjepa2_predictor: mask-denoising predictor, 384 wide, 12 blocks, 12 heads, 10 mask tokens."""
    return MaskPredictor(PredictorConfig(**overrides))


def register_presets() -> None:
    """Register the predictor presets in :data:`jepa.registry.PREDICTORS` (idempotent)."""
    from jepa.predictors.action_conditioned import ac_predictor_tiny, vjepa2_ac_vitg

    builders = {
        "vjepa2_predictor": (vjepa2_predictor, ("vjepa2",)),
        # V-JEPA 2-AC (official file: https://dl.fbaipublicfiles.com/vjepa2/vjepa2-ac-vitg.pt, key `predictor`).
        "vjepa2_ac_vitg": (vjepa2_ac_vitg, ("vjepa2", "action-conditioned")),
        "ac_predictor_tiny": (ac_predictor_tiny, ("action-conditioned",)),
    }
    for name, (builder, tags) in builders.items():
        if name not in PREDICTORS._entries:
            PREDICTORS.add(name, builder, tags=tags)


def infer_predictor_config(
    state_dict: Mapping[str, torch.Tensor], num_heads: int | None = None, **overrides: Any
) -> PredictorConfig:
    """Infer the architecture of official-layout predictor weights.

    Args:
        state_dict: official keys (``predictor_embed.weight``, ``mask_tokens.{k}``, ``predictor_blocks.{j}…``);
            ``module.`` / ``backbone.`` prefixes are tolerated. Only shapes are read.
        num_heads: heads, when the width is not in :data:`PREDICTOR_WIDTH_TO_HEADS`.
        overrides: other ``PredictorConfig`` fields — in particular ``img_size`` and ``num_frames``, which the
            weights do not record (defaults 256 / 64: the released ViT-L/H/g-256 models; use 384 for ViT-g-384).

    Returns:
        The ``PredictorConfig`` whose ``MaskPredictor`` loads ``state_dict`` strictly (after dropping
        ``predictor_pos_embed``).
    """
    sd = {key.replace("module.", "").replace("backbone.", ""): value for key, value in state_dict.items()}
    key = "predictor_embed.weight"
    if key not in sd:
        raise KeyError(
            f"infer_predictor_config: no {key!r} in the state dict (first keys: {list(sd)[:5]}); "
            "expected official predictor keys"
        )
    embed_dim, encoder_dim = sd[key].shape
    depth = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r"predictor_blocks\.(\d+)\.", k))), default=-1)
    if depth == 0:
        raise KeyError("infer_predictor_config: no 'predictor_blocks.{j}.*' keys in the state dict")
    num_mask_tokens = sum(1 for k in sd if re.fullmatch(r"mask_tokens\.\d+", k))
    hidden = sd["predictor_blocks.0.mlp.fc1.weight"].shape[0]
    if num_heads is None:
        if embed_dim not in PREDICTOR_WIDTH_TO_HEADS:
            raise ValueError(
                f"infer_predictor_config: width {embed_dim} has no official head count "
                f"(known: {PREDICTOR_WIDTH_TO_HEADS}); pass num_heads="
            )
        num_heads = PREDICTOR_WIDTH_TO_HEADS[embed_dim]
    mlp_ratio = 4.0 if int(embed_dim * 4.0) == hidden else hidden / embed_dim
    values: dict[str, Any] = {
        "encoder_dim": encoder_dim,
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": num_heads,
        "mlp_ratio": mlp_ratio,
        "num_mask_tokens": max(num_mask_tokens, 1),
        "qkv_bias": "predictor_blocks.0.attn.qkv.bias" in sd,
    }
    values.update(overrides)
    config = PredictorConfig(**values)
    if config.mlp_hidden_dim != hidden:
        raise ValueError(f"infer_predictor_config: no mlp_ratio gives int({embed_dim}·r) == {hidden}")
    return config
