"""EK100 anticipation probe: the shared attentive pooler with 3 queries and verb / noun / action linear heads.

Spec: anticipation.md §5, checkpoints.md §1.4. Query 0 → ``verb_classifier``, 1 → ``noun_classifier``, 2 →
``action_classifier``. State-dict keys are the official ones without ``module.``: ``pooler.*``,
``verb_classifier.*``, ``noun_classifier.*``, ``action_classifier.*``, so released ``ek100-*.pt`` probe files
load with :func:`jepa.probes.layouts.official_probe_state_dict` and exported probes load in the official code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from jepa.probes.classifier import ProbeConfigBase

HEAD_NAMES = ("verb", "noun", "action")


@dataclass(frozen=True)
class AnticipationProbeConfig(ProbeConfigBase):
    """Architecture of an :class:`AnticipationProbe` (official: 16 heads, depth 4, LN eps 1e-5)."""

    embed_dim: int
    num_verbs: int
    num_nouns: int
    num_actions: int
    num_heads: int = 16
    depth: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-5


class AnticipationProbe(nn.Module):
    """Attentive pooling with 3 queries, then one linear classifier per query.

    Args:
        embed_dim: token width ``D``.
        num_verbs, num_nouns, num_actions: classes of the three heads.
        num_heads, depth, mlp_ratio, qkv_bias, norm_eps, init_std, use_activation_checkpointing: see
            :class:`~jepa.probes.pooler.AttentivePooler`.

    The linear heads keep PyTorch's default initialisation (as the official ``linear`` of the classifier).

    Input tokens ``(B, N, D)`` → dict ``{"verb": (B, Cv), "noun": (B, Cn), "action": (B, Ca)}`` logits.
    """

    def __init__(
        self,
        embed_dim: int,
        num_verbs: int,
        num_nouns: int,
        num_actions: int,
        num_heads: int = 16,
        depth: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-5,
        init_std: float = 0.02,
        use_activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.config = AnticipationProbeConfig(
            embed_dim, num_verbs, num_nouns, num_actions, num_heads, depth, mlp_ratio, qkv_bias, norm_eps
        )
        self.pooler = self.config.build_pooler(3, init_std, use_activation_checkpointing)  # queries: verb, noun, action
        self.verb_classifier = nn.Linear(embed_dim, num_verbs, bias=True)
        self.noun_classifier = nn.Linear(embed_dim, num_nouns, bias=True)
        self.action_classifier = nn.Linear(embed_dim, num_actions, bias=True)

    @classmethod
    def from_config(cls, config: AnticipationProbeConfig, **kwargs: Any) -> AnticipationProbe:
        """Build from a config (``kwargs``: ``init_std``, ``use_activation_checkpointing``)."""
        return cls(**config.to_dict(), **kwargs)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tokens ``(B, N, D)`` → ``{"verb", "noun", "action"}`` logits ``(B, C_*)``."""
        return self.classify(self.pooler(x))  # (B, 3, D) pooled queries

    def classify(self, q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pooled queries ``(B, 3, D)`` (verb, noun, action) → ``{"verb", "noun", "action"}`` logits ``(B, C_*)``."""
        return {
            "verb": self.verb_classifier(q[:, 0]),
            "noun": self.noun_classifier(q[:, 1]),
            "action": self.action_classifier(q[:, 2]),
        }


def infer_anticipation_probe_config(
    state_dict: Mapping[str, torch.Tensor], num_heads: int = 16, norm_eps: float = 1e-5
) -> AnticipationProbeConfig:
    """Architecture of a prefix-free official EK100 probe state dict (heads and LN eps are not in the weights)."""
    required = ("pooler.query_tokens", "pooler.cross_attention_block.mlp.fc1.weight") + tuple(
        f"{name}_classifier.weight" for name in HEAD_NAMES
    )
    missing = [key for key in required if key not in state_dict]
    if missing:
        raise KeyError(
            f"infer_anticipation_probe_config: missing {missing}; an EK100 probe has pooler.* and "
            f"verb/noun/action_classifier.* keys (got {list(state_dict)[:6]} ...)"
        )
    queries = state_dict["pooler.query_tokens"]
    if queries.shape[1] != 3:
        raise ValueError(
            f"infer_anticipation_probe_config: pooler.query_tokens {tuple(queries.shape)}, expected (1, 3, D)"
        )
    embed_dim = queries.shape[-1]
    blocks = {int(m[1]) for key in state_dict if (m := re.match(r"^pooler\.blocks\.(\d+)\.", key))}
    hidden = state_dict["pooler.cross_attention_block.mlp.fc1.weight"].shape[0]
    return AnticipationProbeConfig(
        embed_dim=embed_dim,
        num_verbs=state_dict["verb_classifier.weight"].shape[0],
        num_nouns=state_dict["noun_classifier.weight"].shape[0],
        num_actions=state_dict["action_classifier.weight"].shape[0],
        num_heads=num_heads,
        depth=len(blocks) + 1,
        mlp_ratio=hidden / embed_dim,
        qkv_bias="pooler.cross_attention_block.xattn.q.bias" in state_dict,
        norm_eps=norm_eps,
    )
