"""Transformer building blocks shared by the encoder and the predictors (spec: encoder.md §3–§4).

Module names (``qkv``, ``proj``, ``fc1``, ``fc2``, ``norm1``, ``norm2``, ``attn``, ``mlp``) reproduce the official
state-dict keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jepa.encoders.rope import apply_rope_3d


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and 3-D RoPE on queries and keys.

    Args:
        dim: token width.
        num_heads: heads; ``dim`` must be divisible by it.
        qkv_bias: bias on the fused ``qkv`` Linear.
        rope_mode: ``"official"`` or ``"interleaved"`` (see :mod:`jepa.encoders.rope`).
        rope_theta: RoPE base.
        use_rope: apply 3-D RoPE (True for every V-JEPA 2 model).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        rope_mode: str = "official",
        rope_theta: float = 10000.0,
        use_rope: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.rope_mode = rope_mode
        self.rope_theta = rope_theta
        self.use_rope = use_rope
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)  # rows [q | k | v], head-major inside each
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(
        self,
        x: torch.Tensor,
        ids: torch.Tensor | None,
        grid: tuple[int, int],
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend over tokens.

        Args:
            x: ``(B, N, D)``.
            ids: token ids for RoPE, ``(B, N)`` or ``(N,)``; ``None`` means ``0 … N−1``.
            grid: ``(Hp, Wp)`` used to decode ids into positions.
            attn_mask: optional SDPA mask broadcastable to ``(B, heads, N, N)`` (bool: True = attend; or additive).

        Returns:
            ``(B, N, D)``.
        """
        batch, num_tokens, dim = x.shape
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        if self.use_rope:
            if ids is None:
                ids = torch.arange(num_tokens, device=x.device)
            # q and k rotated in one call (2, B, heads, N, hd): the angles are computed once for both.
            q, k = apply_rope_3d(qkv[:2], ids, grid, self.rope_mode, self.rope_theta).unbind(0)
            v = qkv[2]
        else:
            q, k, v = qkv.unbind(0)  # each (B, heads, N, hd)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, heads, N, hd)
        out = out.transpose(1, 2).reshape(batch, num_tokens, dim)  # (B, N, D)
        return self.proj(out)


class MLP(nn.Module):
    """``fc2(GELU(fc1(x)))`` with exact (erf) GELU."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., D) → (..., D)``."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``.

    Args:
        dim: token width.
        num_heads: attention heads.
        mlp_hidden_dim: MLP hidden width.
        qkv_bias: bias on ``attn.qkv``.
        norm_eps: LayerNorm epsilon.
        rope_mode, rope_theta: see :class:`Attention`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_hidden_dim: int,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        rope_mode: str = "official",
        rope_theta: float = 10000.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, rope_mode=rope_mode, rope_theta=rope_theta)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, mlp_hidden_dim)

    def forward(
        self,
        x: torch.Tensor,
        ids: torch.Tensor | None,
        grid: tuple[int, int],
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, N, D) → (B, N, D)``; ``ids``/``grid``/``attn_mask`` as in :meth:`Attention.forward`."""
        x = x + self.attn(self.norm1(x), ids, grid, attn_mask)
        return x + self.mlp(self.norm2(x))
