"""Tiny models and released-like official checkpoints for the hub tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from jepa.encoders import EncoderConfig, VideoViT
from jepa.predictors import MaskPredictor, PredictorConfig

# Width 192 / 3 heads (vit_tiny) and a 384-wide predictor: both widths have an official head count, so
# architectures can be inferred from shapes alone, as for released files.
TINY_ENCODER = EncoderConfig(embed_dim=192, depth=2, num_heads=3, img_size=32, num_frames=4)
TINY_PREDICTOR = PredictorConfig(encoder_dim=192, embed_dim=384, depth=1, num_heads=12, img_size=32, num_frames=4)


def perturb(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Add noise to every parameter (LayerNorms, biases and zero-initialised mask tokens become distinct)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return module


@pytest.fixture(scope="session")
def tiny_models() -> Callable[[int], tuple[VideoViT, MaskPredictor]]:
    """``make(seed) -> (encoder, predictor)`` with random, perturbed weights (cached per seed; do not modify)."""
    cache: dict[int, tuple[VideoViT, MaskPredictor]] = {}

    def make(seed: int = 0) -> tuple[VideoViT, MaskPredictor]:
        if seed not in cache:
            torch.manual_seed(seed)
            encoder = perturb(VideoViT(TINY_ENCODER), seed + 1).eval()
            predictor = perturb(MaskPredictor(TINY_PREDICTOR), seed + 2).eval()
            cache[seed] = (encoder, predictor)
        return cache[seed]

    return make


def adamw_state(module: torch.nn.Module, groups: int = 4) -> dict:
    """An AdamW ``state_dict()`` after one step (built directly: a real first step costs seconds on CPU)."""
    params = list(module.parameters())
    state = {
        i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        for i, p in enumerate(params)
    }
    ids = list(range(len(params)))
    chunk = -(-len(ids) // groups)
    param_groups = [
        {
            "lr": 1e-4,
            "betas": (0.9, 0.999),
            "eps": 1e-8,
            "weight_decay": 0.04,
            "amsgrad": False,
            "foreach": None,
            "maximize": False,
            "capturable": False,
            "differentiable": False,
            "fused": None,
            "params": ids[g * chunk : (g + 1) * chunk],
        }
        for g in range(groups)
    ]
    return {"state": state, "param_groups": param_groups}


@pytest.fixture
def write_released_like() -> Callable[..., Path]:
    """``write(path, target, context, predictor)``: an official ``.pt`` laid out exactly like the released files.

    Top-level ``encoder`` (context encoder), ``target_encoder`` (EMA encoder), ``predictor``, ``opt`` (a real
    AdamW state, 4 groups), ``scaler``, ``epoch``, ``loss``, ``batch_size``, ``world_size``, ``lr``; inner keys
    prefixed ``module.backbone.``; an unused ``pos_embed`` / ``predictor_pos_embed``; no jepa config entry.
    """

    def write(path: Path, target: VideoViT, context: VideoViT, predictor: MaskPredictor) -> Path:
        def prefixed(module: torch.nn.Module) -> dict[str, torch.Tensor]:
            return {f"module.backbone.{k}": v.clone() for k, v in module.state_dict().items()}

        encoder_sd = prefixed(context)
        encoder_sd["module.backbone.pos_embed"] = torch.zeros(1, 8, target.config.embed_dim)
        target_sd = prefixed(target)
        target_sd["module.backbone.pos_embed"] = torch.zeros(1, 8, target.config.embed_dim)
        predictor_sd = prefixed(predictor)
        predictor_sd["module.backbone.predictor_pos_embed"] = torch.zeros(1, 8, predictor.config.embed_dim)
        torch.save(
            {
                "encoder": encoder_sd,
                "predictor": predictor_sd,
                "opt": adamw_state(context),
                "scaler": None,
                "target_encoder": target_sd,
                "epoch": 7,
                "loss": 0.25,
                "batch_size": 4,
                "world_size": 8,
                "lr": 1e-4,
            },
            path,
        )
        return path

    return write
