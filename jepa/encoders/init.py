"""Official initialisation for training from scratch (spec: encoder.md §8)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def init_linear_conv_norm(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal (±2 absolute) Linear/Conv weights, zero biases, LayerNorm weight 1 / bias 0 (recursive)."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(sub.weight, std=std)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            if sub.weight is not None:
                nn.init.ones_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


@torch.no_grad()
def rescale_blocks(blocks: Iterable[nn.Module]) -> None:
    """Divide ``attn.proj.weight`` and ``mlp.fc2.weight`` of block ``l`` (1-based) by ``sqrt(2·l)``."""
    for layer_id, block in enumerate(blocks, start=1):
        scale = math.sqrt(2.0 * layer_id)
        block.attn.proj.weight.div_(scale)
        block.mlp.fc2.weight.div_(scale)


def init_vit_weights(module: nn.Module, blocks: Iterable[nn.Module], std: float = 0.02) -> None:
    """Official ViT init: :func:`init_linear_conv_norm` on ``module``, then :func:`rescale_blocks` on ``blocks``.

    Args:
        module: the whole model (every Linear/Conv/LayerNorm inside is initialised).
        blocks: its transformer blocks in depth order (each with ``attn.proj`` and ``mlp.fc2``).
        std: standard deviation of the truncated normal.
    """
    init_linear_conv_norm(module, std=std)
    rescale_blocks(blocks)
