"""Tubelet tokenizer: a strided ``Conv3d`` (spec: encoder.md §2)."""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed3D(nn.Module):
    """``(B, C, T, H, W)`` video → ``(B, N, D)`` tokens, token id ``t·Hp·Wp + h·Wp + w``.

    Args:
        in_chans: input channels C.
        embed_dim: token width D.
        patch_size: spatial patch side p.
        tubelet_size: frames per token.
    """

    def __init__(self, in_chans: int = 3, embed_dim: int = 1024, patch_size: int = 16, tubelet_size: int = 2) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) → (B, T/tubelet · H/p · W/p, D)``."""
        x = self.proj(x)  # (B, D, T', Hp, Wp)
        # Contiguous once here: otherwise the transposed layout propagates through the residual stream and every
        # LayerNorm of every block copies its input.
        return x.flatten(2).transpose(1, 2).contiguous()  # (B, N, D)
