"""Attentive classifier: :class:`~jepa.probes.pooler.AttentivePooler` with one query, then a linear layer.

Spec: probes.md §1. State-dict keys are the official ones without ``module.``: ``pooler.*`` and ``linear.*``.
Other heads (EK100 anticipation with 3 queries and verb/noun/action linears, the MLLM projector) build on the same
:class:`AttentivePooler` rather than on this class; probe configs share :class:`ProbeConfigBase`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from jepa.probes.pooler import AttentivePooler


class ProbeConfigBase:
    """Methods shared by the frozen probe-config dataclasses (:class:`ProbeConfig`, ``AnticipationProbeConfig``).

    Each subclass declares its own fields, in its own order (``embed_dim``, its class counts, then the pooler fields
    below), so its positional constructor and :func:`dataclasses.asdict` layout stay its own.
    """

    embed_dim: int
    num_heads: int
    depth: int
    mlp_ratio: float
    qkv_bias: bool
    norm_eps: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (:func:`dataclasses.asdict`), in declaration order."""
        return asdict(self)  # type: ignore[call-overload]

    def build_pooler(
        self, num_queries: int, init_std: float = 0.02, use_activation_checkpointing: bool = False
    ) -> AttentivePooler:
        """The :class:`AttentivePooler` of this architecture with ``num_queries`` queries: tokens ``(B, N, D)`` →
        ``(B, num_queries, D)``."""
        return AttentivePooler(
            self.embed_dim,
            num_queries=num_queries,
            num_heads=self.num_heads,
            depth=self.depth,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=self.qkv_bias,
            norm_eps=self.norm_eps,
            init_std=init_std,
            use_activation_checkpointing=use_activation_checkpointing,
        )


@dataclass(frozen=True)
class ProbeConfig(ProbeConfigBase):
    """Architecture of an :class:`AttentiveClassifier` (official defaults: 16 heads, depth 4, LN eps 1e-5).

    Attributes:
        embed_dim: encoder width ``D``.
        num_classes: number of classes ``C``.
        num_heads: pooler attention heads (16 for every released probe; transformers uses the encoder's heads).
        depth: pooler blocks including the cross-attention block.
        mlp_ratio: MLP expansion.
        qkv_bias: attention biases.
        norm_eps: pooler LayerNorm epsilon (official 1e-5; transformers 1e-6).
    """

    embed_dim: int
    num_classes: int
    num_heads: int = 16
    depth: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-5


class AttentiveClassifier(nn.Module):
    """``linear(pooler(x).squeeze(1))``: attentive pooling with one query, then class logits.

    Args:
        embed_dim: token width ``D``.
        num_classes: classes ``C``.
        num_heads, depth, mlp_ratio, qkv_bias, norm_eps, init_std, use_activation_checkpointing: see
            :class:`~jepa.probes.pooler.AttentivePooler`.

    The ``linear`` layer keeps PyTorch's default initialisation, as in the official ``AttentiveClassifier`` (only
    the pooler receives the truncated-normal init).

    Input tokens ``(B, N, D)`` → logits ``(B, C)``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        num_heads: int = 16,
        depth: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-5,
        init_std: float = 0.02,
        use_activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.config = ProbeConfig(embed_dim, num_classes, num_heads, depth, mlp_ratio, qkv_bias, norm_eps)
        self.pooler = self.config.build_pooler(1, init_std, use_activation_checkpointing)
        self.linear = nn.Linear(embed_dim, num_classes, bias=True)

    @classmethod
    def from_config(cls, config: ProbeConfig, **kwargs: Any) -> AttentiveClassifier:
        """Build from a :class:`ProbeConfig` (``kwargs``: ``init_std``, ``use_activation_checkpointing``)."""
        return cls(**config.to_dict(), **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, N, D)`` → logits ``(B, C)``."""
        pooled = self.pooler(x).squeeze(1)  # (B, 1, D) → (B, D)
        return self.linear(pooled)
