"""Attentive pooler: self-attention blocks without positions, then cross-attention from learnable queries.

Spec: probes.md §1 (official ``src/models/attentive_pooler.py`` and ``src/models/utils/modules.py``). Module names
reproduce the official probe keys (``pooler.query_tokens``, ``pooler.blocks.{k}.attn.qkv``,
``pooler.cross_attention_block.xattn.{q,kv}`` …), so released probe files load after removing ``module.``.
Classification (1 query), EK100 anticipation (3 queries) and the MLLM projector all use this one class.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from jepa.encoders.init import init_linear_conv_norm
from jepa.encoders.layers import MLP, Attention


class SelfAttentionBlock(nn.Module):
    """Pre-norm block ``x + attn(norm1(x))``, ``x + mlp(norm2(x))`` with plain attention (no RoPE, no positions).

    Args:
        dim: token width ``D``.
        num_heads: attention heads (``D`` divisible by it).
        mlp_ratio: MLP hidden width = ``int(D · mlp_ratio)``.
        qkv_bias: bias on the fused ``attn.qkv``.
        norm_eps: LayerNorm epsilon (official pooler 1e-5, transformers 1e-6).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, norm_eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, use_rope=False)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, D) → (B, N, D)``."""
        x = x + self.attn(self.norm1(x), None, (1, 1))  # ids/grid unused without RoPE
        return x + self.mlp(self.norm2(x))


class CrossAttention(nn.Module):
    """Queries attend to tokens: ``q = Linear(D, D)``, fused ``kv = Linear(D, 2D)`` (rows ``[k | v]``), SDPA with
    scale ``head_dim^-0.5``. **No output projection** (official and transformers alike).

    Args:
        dim: width ``D``.
        num_heads: heads.
        qkv_bias: bias on ``q`` and ``kv``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"CrossAttention: dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``q`` ``(B, Q, D)`` attends to ``x`` ``(B, N, D)``; returns ``(B, Q, D)``."""
        batch, num_queries, dim = q.shape
        q = self.q(q).unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)  # (B, heads, Q, hd)
        kv = self.kv(x).unflatten(-1, (2, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)  # each (B, heads, N, hd)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, Q, hd)
        return out.transpose(1, 2).reshape(batch, num_queries, dim)  # (B, Q, D)


class CrossAttentionBlock(nn.Module):
    """``q ← q + xattn(q, norm1(x))``; ``q ← q + mlp(norm2(q))`` (queries are not normalised before ``xattn.q``).

    Args: as :class:`SelfAttentionBlock`.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, norm_eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.xattn = CrossAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``q`` ``(B, Q, D)``, ``x`` ``(B, N, D)`` → ``(B, Q, D)``."""
        q = q + self.xattn(q, self.norm1(x))
        return q + self.mlp(self.norm2(q))


class AttentivePooler(nn.Module):
    """``depth − 1`` self-attention blocks over the tokens, then one cross-attention block from learnable queries.

    The pooler has no positional information of any kind, so it is invariant to the order of its input tokens:
    multi-clip and multilevel features are simply concatenated along the token axis.

    Args:
        embed_dim: token width ``D`` (the encoder width).
        num_queries: learnable query tokens ``Q`` (1 for classification, 3 for EK100 anticipation).
        num_heads: attention heads (16 in every released probe).
        depth: total blocks including the cross-attention block (4 official; 1 = cross-attention only).
        mlp_ratio: MLP expansion (4).
        qkv_bias: biases on the attention projections.
        norm_eps: LayerNorm epsilon (official 1e-5; transformers' ``VJEPA2AttentivePooler`` uses 1e-6).
        init_std: truncated-normal std for Linear weights and the query tokens.
        use_activation_checkpointing: checkpoint the self-attention blocks when training with gradients.

    Input ``(B, N, D)`` tokens → output ``(B, Q, D)``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_queries: int = 1,
        num_heads: int = 16,
        depth: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-5,
        init_std: float = 0.02,
        use_activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"AttentivePooler: depth must be >= 1 (the cross-attention block), got {depth}")
        if num_queries < 1:
            raise ValueError(f"AttentivePooler: num_queries must be >= 1, got {num_queries}")
        self.embed_dim = embed_dim
        self.num_queries = num_queries
        self.num_heads = num_heads
        self.use_activation_checkpointing = use_activation_checkpointing
        # Registration order (queries, cross block, blocks) follows the official module, so a seeded init draws
        # the same random numbers in the same order.
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, embed_dim))
        self.cross_attention_block = CrossAttentionBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps) for _ in range(depth - 1)
        )
        self.reset_parameters(init_std)

    @torch.no_grad()
    def reset_parameters(self, init_std: float = 0.02) -> None:
        """Official init: trunc-normal Linear weights and queries, zero biases, LayerNorm (1, 0); then block ``k``'s
        ``attn.proj`` / ``mlp.fc2`` weights divided by ``sqrt(2(k+1))`` and the cross block's ``mlp.fc2`` by
        ``sqrt(2·(depth − 1))`` (``sqrt(2)`` when there is no self-attention block)."""
        nn.init.trunc_normal_(self.query_tokens, std=init_std)
        init_linear_conv_norm(self, std=init_std)
        for layer_id, block in enumerate(self.blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer_id))
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer_id))
        self.cross_attention_block.mlp.fc2.weight.div_(math.sqrt(2.0 * max(1, len(self.blocks))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool tokens ``(B, N, D)`` into ``(B, Q, D)``."""
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"AttentivePooler: expected tokens (B, N, D={self.embed_dim}), got {tuple(x.shape)}")
        for block in self.blocks:
            if self.use_activation_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        q = self.query_tokens.expand(x.shape[0], -1, -1)  # (B, Q, D)
        return self.cross_attention_block(q, x)
