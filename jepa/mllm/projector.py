"""Projectors from encoder tokens ``(B, N, D)`` to LLM input embeddings ``(B, N', H)``.

Spec: mllm.md §1. Two kinds:

- :class:`AttentiveProjector` (controlled setup): the shared :class:`jepa.probes.AttentivePooler` with
  ``N / pooling_factor`` learnable queries reduces the visual tokens, then a 2-layer MLP maps width ``D`` to the LLM
  hidden size ``H``. The paper does not give the pooler's depth/heads (UNKNOWN); defaults: 1 block (cross-attention
  only), 16 heads.
- :class:`MLPProjector` (scaling setup): a 2-layer MLP (Linear, GELU, Linear) applied to every token, no pooling.

Both are pure torch; neither imports transformers.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from jepa.probes.pooler import AttentivePooler

ProjectorKind = Literal["attentive", "mlp"]

__all__ = ["AttentiveProjector", "MLPProjector", "ProjectorKind", "build_projector"]


class MLPProjector(nn.Module):
    """``Linear(D, hidden) → GELU → Linear(hidden, H)`` on every token (LLaVA-1.5 style, no pooling).

    Args:
        in_dim: encoder width ``D``.
        out_dim: LLM hidden size ``H``.
        hidden_dim: MLP width (default ``out_dim``, as LLaVA).

    Input ``(B, N, D)`` → output ``(B, N, H)``.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden = hidden_dim or out_dim
        self.in_dim, self.out_dim = in_dim, out_dim
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        """Visual tokens handed to the LLM for ``num_input_tokens`` encoder tokens (unchanged: no pooling)."""
        return num_input_tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, N, D) → (B, N, H)``."""
        if tokens.ndim != 3 or tokens.shape[-1] != self.in_dim:
            raise ValueError(f"MLPProjector: expected tokens (B, N, D={self.in_dim}), got {tuple(tokens.shape)}")
        return self.fc2(self.act(self.fc1(tokens)))


class AttentiveProjector(nn.Module):
    """Attentive pooling by ``pooling_factor`` (learnable queries ``Q = N / factor``), then a 2-layer MLP ``D → H``.

    Args:
        in_dim: encoder width ``D``.
        out_dim: LLM hidden size ``H``.
        num_input_tokens: encoder tokens ``N`` per video (``T/tubelet · H/patch · W/patch``); must be divisible by
            ``pooling_factor``.
        pooling_factor: token reduction ``N / Q`` (paper: 4 at 256/384 px, 8 at 512 px, 16 for image encoders).
        num_heads: pooler heads (``D`` divisible by it).
        depth: pooler blocks including the cross-attention block (1 = cross-attention only).
        mlp_ratio: pooler MLP expansion.
        hidden_dim: width of the output MLP (default ``out_dim``).
        use_activation_checkpointing: checkpoint the pooler's self-attention blocks.

    Input ``(B, N, D)`` → output ``(B, N / pooling_factor, H)``. The pooler has no positional information: the
    output depends on the set of tokens (each token's content carries its RoPE-mixed position), and query ``i`` is
    always the ``i``-th visual token given to the LLM.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_input_tokens: int,
        pooling_factor: int = 4,
        num_heads: int = 16,
        depth: int = 1,
        mlp_ratio: float = 4.0,
        hidden_dim: int | None = None,
        use_activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if pooling_factor < 1 or num_input_tokens % pooling_factor:
            raise ValueError(
                f"AttentiveProjector: num_input_tokens={num_input_tokens} must be divisible by "
                f"pooling_factor={pooling_factor} (>= 1)"
            )
        self.in_dim, self.out_dim = in_dim, out_dim
        self.num_input_tokens = num_input_tokens
        self.pooling_factor = pooling_factor
        self.pooler = AttentivePooler(
            in_dim,
            num_queries=num_input_tokens // pooling_factor,
            num_heads=num_heads,
            depth=depth,
            mlp_ratio=mlp_ratio,
            use_activation_checkpointing=use_activation_checkpointing,
        )
        self.mlp = MLPProjector(in_dim, out_dim, hidden_dim)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        """Visual tokens handed to the LLM (``N / pooling_factor``)."""
        return num_input_tokens // self.pooling_factor

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, N, D) → (B, N / factor, H)``."""
        if tokens.ndim != 3 or tokens.shape[1] != self.num_input_tokens or tokens.shape[-1] != self.in_dim:
            raise ValueError(
                f"AttentiveProjector: expected tokens (B, N={self.num_input_tokens}, D={self.in_dim}), got "
                f"{tuple(tokens.shape)} (N is fixed by num_frames and the crop size the projector was built for)"
            )
        pooled = self.pooler(tokens)  # (B, N / factor, D)
        return self.mlp(pooled)  # (B, N / factor, H)


def build_projector(
    kind: ProjectorKind,
    in_dim: int,
    out_dim: int,
    num_input_tokens: int,
    pooling_factor: int = 4,
    num_heads: int = 16,
    depth: int = 1,
    hidden_dim: int | None = None,
    use_activation_checkpointing: bool = False,
) -> AttentiveProjector | MLPProjector:
    """Build a projector by kind (``"attentive"`` or ``"mlp"``); arguments as the two classes."""
    if kind == "attentive":
        return AttentiveProjector(
            in_dim,
            out_dim,
            num_input_tokens,
            pooling_factor=pooling_factor,
            num_heads=num_heads,
            depth=depth,
            hidden_dim=hidden_dim,
            use_activation_checkpointing=use_activation_checkpointing,
        )
    if kind == "mlp":
        return MLPProjector(in_dim, out_dim, hidden_dim)
    raise ValueError(f"build_projector: kind must be 'attentive' or 'mlp', got {kind!r}")
