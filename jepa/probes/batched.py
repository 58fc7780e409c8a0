"""Run N same-shaped attentive probes on the same tokens, computing head-independent work once.

Spec: probes.md §1–§2. Every head keeps its own ``nn.Parameter`` objects (so its own optimizer param group and the
official ``pooler.*`` / ``linear.*`` state-dict keys): where layers are head-batched, their weights are
``torch.stack``-ed along a new head axis ``H`` at every forward and autograd routes each slice's gradient back to its
own parameter. Results equal ``[head(x) for head in heads]`` up to float rounding (sums associate differently).

Algebra that does not change the maths removes per-head work:

* a LayerNorm's *statistics* ``x̂ = (x − μ) / σ`` of the shared encoder tokens are computed once; each head's affine
  ``(γ, β)`` is folded into the Linear that follows: ``W(γ⊙x̂ + β) + b = (W·diag γ) x̂ + (Wβ + b)``;
* the cross-attention block never forms the tokens' keys and values: with ``q`` the projected query of one
  attention head, ``q·k_n = (W_kᵀq ⊙ γ)·x̂_n + c`` where ``c`` does not depend on the token ``n`` and cancels in the
  softmax, and ``Σ_n p_n v_n = W_v(γ ⊙ Σ_n p_n x̂_n + β) + b_v`` (``Σ p = 1``). Scores and the pooled token cost
  ``4·heads·Q·D`` FLOPs per token instead of the ``4D²`` of the ``kv`` projection (``D/(heads·Q)`` = 64× fewer for
  ViT-L). With 1-block probes (cross-attention only) every head reads the shared ``x̂``, so the whole sweep's
  scores are one ``(H·heads·Q, D) × (D, N)`` matmul.

The self-attention blocks of deeper probes are genuinely per head (their input already differs after the first
residual); they run as each head's own modules, one head after another (``stack_self_blocks`` batches them instead;
slower on CPU, see :func:`stacked_pooler_forward`).

One visible difference in training: a key bias (``xattn.kv.bias[:D]``, ``attn.qkv.bias[D:2D]``) shifts all scores of
a query equally, so its true gradient is 0. The key/value-free cross-attention gives ``xattn.kv.bias[:D]`` exactly 0;
the module gives it round-off, which AdamW's normalisation turns into LR-sized steps. Its stored value can therefore
differ between the two paths, with no effect on any output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from jepa.probes.classifier import AttentiveClassifier
from jepa.probes.pooler import AttentivePooler, CrossAttentionBlock, SelfAttentionBlock


def _stack(modules: Sequence[nn.Module], get: Callable[[nn.Module], torch.Tensor]) -> torch.Tensor:
    """``(H, …)``: one tensor per module, stacked along a new leading head axis (differentiable)."""
    return torch.stack([get(m) for m in modules])


def _normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNorm without affine over the last axis (``x̂``), shape unchanged."""
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def _fold_norm(weight: torch.Tensor, bias: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor):
    """Fold a LayerNorm affine into the following Linear.

    Args:
        weight: ``(H, out, D)``; bias: ``(H, out)``; gamma, beta: ``(H, D)``.

    Returns:
        ``(H, out, D)`` weight and ``(H, out)`` bias with ``W'x̂ + b' = W(γ⊙x̂ + β) + b``.
    """
    folded_weight = weight * gamma[:, None, :]
    folded_bias = bias + torch.bmm(weight, beta[:, :, None]).squeeze(-1)
    return folded_weight, folded_bias


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-head Linear: ``x`` ``(H, …, in)``, ``weight`` ``(H, out, in)``, ``bias`` ``(H, out)`` → ``(H, …, out)``."""
    heads, *middle, width = x.shape
    out = torch.baddbmm(bias[:, None, :], x.reshape(heads, -1, width), weight.transpose(1, 2))  # (H, M, out)
    return out.reshape(heads, *middle, weight.shape[1])


def _shared_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Every head's Linear on the same input as one GEMM: ``x`` ``(…, in)`` shared → ``(H, …, out)``."""
    heads, out_features, width = weight.shape
    out = F.linear(x, weight.reshape(heads * out_features, width), bias.reshape(-1))  # (…, H·out)
    out = out.unflatten(-1, (heads, out_features))  # (…, H, out)
    return out.movedim(-2, 0)  # (H, …, out)


def _norm_linear(
    x: torch.Tensor, shared: bool, eps: float, gamma: torch.Tensor, beta: torch.Tensor, weight: torch.Tensor,
    bias: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """``Linear_h(LayerNorm_h(x))`` for every head ``h``: ``x`` ``(…, D)`` if ``shared`` else ``(H, …, D)``."""
    weight, bias = _fold_norm(weight, bias, gamma, beta)
    x_hat = _normalize(x, eps)
    return _shared_linear(x_hat, weight, bias) if shared else _linear(x_hat, weight, bias)


def _mlp_residual(blocks: Sequence[nn.Module], x: torch.Tensor, eps: float) -> torch.Tensor:
    """``x + mlp_h(norm2_h(x))`` per head; ``x`` ``(H, B, L, D)`` → same shape."""
    hidden = _norm_linear(
        x,
        False,
        eps,
        _stack(blocks, lambda b: b.norm2.weight),
        _stack(blocks, lambda b: b.norm2.bias),
        _stack(blocks, lambda b: b.mlp.fc1.weight),
        _stack(blocks, lambda b: b.mlp.fc1.bias),
    )
    hidden = F.gelu(hidden)  # (H, B, L, hidden)
    return x + _linear(hidden, _stack(blocks, lambda b: b.mlp.fc2.weight), _stack(blocks, lambda b: b.mlp.fc2.bias))


def _self_attention_blocks(blocks: Sequence[SelfAttentionBlock], x: torch.Tensor, shared: bool) -> torch.Tensor:
    """One :class:`SelfAttentionBlock` per head.

    Args:
        blocks: ``H`` blocks of identical shape.
        x: ``(B, N, D)`` shared by every head, or ``(H, B, N, D)``.
        shared: which of the two ``x`` is.

    Returns:
        ``(H, B, N, D)``.
    """
    first = blocks[0]
    heads, num_heads, head_dim = len(blocks), first.attn.num_heads, first.attn.head_dim
    eps = first.norm1.eps
    qkv = _norm_linear(
        x,
        shared,
        eps,
        _stack(blocks, lambda b: b.norm1.weight),
        _stack(blocks, lambda b: b.norm1.bias),
        _stack(blocks, lambda b: b.attn.qkv.weight),
        _stack(blocks, lambda b: b.attn.qkv.bias),
    )  # (H, B, N, 3D)
    _, batch, tokens, _ = qkv.shape
    qkv = qkv.reshape(heads * batch, tokens, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4)  # (3, H·B, nh, N, hd)
    q, k, v = qkv.unbind(0)
    out = F.scaled_dot_product_attention(q, k, v)  # (H·B, nh, N, hd)
    out = out.transpose(1, 2).reshape(heads, batch, tokens, num_heads * head_dim)  # (H, B, N, D)
    out = _linear(out, _stack(blocks, lambda b: b.attn.proj.weight), _stack(blocks, lambda b: b.attn.proj.bias))
    x = x + out  # (H, B, N, D); a shared x broadcasts over heads
    return _mlp_residual(blocks, x, eps)


def _cross_attention_blocks(
    blocks: Sequence[CrossAttentionBlock], queries: Sequence[torch.Tensor], x: torch.Tensor, shared: bool
) -> torch.Tensor:
    """One :class:`CrossAttentionBlock` per head, without forming the tokens' keys and values (see module doc).

    Work that depends only on a head's parameters (query projection, ``W_kᵀq``, ``W_v``, the MLP on the ``Q``
    queries) runs per head with the head's own modules; only the work over the ``N`` tokens (scores, softmax, the
    probability-weighted token sum) is batched over heads.

    Args:
        blocks: ``H`` blocks of identical shape.
        queries: ``H`` learnable query tensors ``(Q, D)`` (the same for every sample).
        x: tokens ``(B, N, D)`` shared by every head, or ``(H, B, N, D)``.
        shared: which of the two ``x`` is.

    Returns:
        ``(H, B, Q, D)``.
    """
    first = blocks[0]
    heads, (num_queries, dim) = len(blocks), queries[0].shape
    num_heads, head_dim = first.xattn.num_heads, first.xattn.head_dim
    probes, values = [], []
    for block, query in zip(blocks, queries, strict=True):
        q = block.xattn.q(query).unflatten(-1, (num_heads, head_dim)).transpose(0, 1)  # (nh, Q, hd)
        # unbind (not slicing): its backward writes both halves into one gradient, without zero-filled copies.
        w_k, w_v = block.xattn.kv.weight.view(2, num_heads, head_dim, dim).unbind(0)  # each (nh, hd, D)
        values.append(w_v)
        # Score of token n for (attention head j, query q): scale · (W_kᵀ q ⊙ γ) · x̂_n (+ a constant in n).
        probes.append(torch.matmul(q, w_k) * (block.norm1.weight * head_dim**-0.5))  # (nh, Q, D)
    x_hat = _normalize(x, first.norm1.eps)
    if shared:
        probe = torch.stack(probes).reshape(heads * num_heads * num_queries, dim)  # (H·nh·Q, D)
        scores = torch.matmul(probe, x_hat.transpose(1, 2))  # (B, H·nh·Q, N)
        pooled = torch.matmul(scores.softmax(dim=-1), x_hat)  # (B, H·nh·Q, D)
        pooled = pooled.unflatten(1, (heads, num_heads, num_queries)).transpose(0, 1)  # (H, B, nh, Q, D)
    else:
        probe = torch.stack(probes).reshape(heads, 1, num_heads * num_queries, dim)  # (H, 1, nh·Q, D)
        scores = torch.matmul(probe, x_hat.transpose(-1, -2))  # (H, B, nh·Q, N)
        pooled = torch.matmul(scores.softmax(dim=-1), x_hat)  # (H, B, nh·Q, D)
        pooled = pooled.unflatten(2, (num_heads, num_queries))  # (H, B, nh, Q, D)
    outputs = []
    for block, query, head_pooled, w_v in zip(blocks, queries, pooled.unbind(0), values, strict=True):
        mixed = head_pooled * block.norm1.weight + block.norm1.bias  # Σ_n p_n·LN(x)_n: (B, nh, Q, D)
        out = torch.einsum("bjqe,jde->bqjd", mixed, w_v).flatten(-2)  # (B, Q, D)
        out = query + (out + block.xattn.kv.bias[dim:])  # v bias (Σ p = 1); residual on the raw queries
        outputs.append(out + block.mlp(block.norm2(out)))  # (B, Q, D)
    return torch.stack(outputs)  # (H, B, Q, D)


def _check_same_shape(modules: Sequence[nn.Module], owner: str) -> None:
    if not modules:
        raise ValueError(f"{owner}: at least one head is needed")
    reference = [(name, p.shape) for name, p in modules[0].named_parameters()]
    for index, module in enumerate(modules[1:], start=1):
        shapes = [(name, p.shape) for name, p in module.named_parameters()]
        if shapes != reference:
            raise ValueError(f"{owner}: head {index} has parameters {shapes[:3]}… unlike head 0 {reference[:3]}…")


def _run_self_blocks(pooler: AttentivePooler, x: torch.Tensor) -> torch.Tensor:
    """The pooler's own self-attention blocks (with its activation checkpointing): ``(B, N, D) → (B, N, D)``."""
    use_checkpoint = pooler.use_activation_checkpointing and pooler.training and torch.is_grad_enabled()
    for block in pooler.blocks:
        x = checkpoint(block, x, use_reentrant=False) if use_checkpoint else block(x)
    return x


def _stacked_self_blocks(poolers: Sequence[AttentivePooler], x: torch.Tensor) -> torch.Tensor:
    """Every pooler's self-attention blocks as head-batched matmuls: ``(B, N, D)`` shared → ``(H, B, N, D)``."""
    first = poolers[0]
    use_checkpoint = first.use_activation_checkpointing and first.training and torch.is_grad_enabled()
    shared = True
    for depth in range(len(first.blocks)):
        blocks = [p.blocks[depth] for p in poolers]

        def run(tokens: torch.Tensor, blocks: list[nn.Module] = blocks, shared: bool = shared) -> torch.Tensor:
            return _self_attention_blocks(blocks, tokens, shared)

        x = checkpoint(run, x, use_reentrant=False) if use_checkpoint else run(x)  # (H, B, N, D)
        shared = False
    return x


def stacked_pooler_forward(
    poolers: Sequence[AttentivePooler], x: torch.Tensor, stack_self_blocks: bool = False
) -> torch.Tensor:
    """``torch.stack([p(x) for p in poolers])``, with the cross-attention blocks head-batched.

    Args:
        poolers: ``H`` :class:`AttentivePooler` of identical architecture (their own parameters).
        x: tokens ``(B, N, D)`` shared by every pooler.
        stack_self_blocks: also run the self-attention blocks as head-batched ``bmm`` (one kernel per layer for all
            heads). Off by default: on CPU it measured about 2× slower than running each head's blocks in turn
            (``benchmarks/probe_sweep.py``; large ``(H, B·N, ·)`` activations leave the cache and ``bmm`` is slower
            than ``mm`` there); it is meant for accelerators where many small per-head kernels are launch-bound.

    Returns:
        ``(H, B, Q, D)``.

    Activation checkpointing follows each pooler's ``use_activation_checkpointing`` (per block).
    """
    _check_same_shape(poolers, "stacked_pooler_forward")
    first = poolers[0]
    if x.ndim != 3 or x.shape[-1] != first.embed_dim:
        raise ValueError(f"stacked_pooler_forward: expected tokens (B, N, D={first.embed_dim}), got {tuple(x.shape)}")
    queries = [p.query_tokens[0] for p in poolers]  # H × (Q, D)
    cross_blocks = [p.cross_attention_block for p in poolers]
    if not first.blocks:  # cross-attention only: every head reads the shared tokens, batched in one matmul
        return _cross_attention_blocks(cross_blocks, queries, x, shared=True)
    if stack_self_blocks:
        return _cross_attention_blocks(cross_blocks, queries, _stacked_self_blocks(poolers, x), shared=False)
    outputs = [
        _cross_attention_blocks([block], [query], _run_self_blocks(pooler, x), shared=True)
        for pooler, block, query in zip(poolers, cross_blocks, queries, strict=True)
    ]  # H × (1, B, Q, D)
    return torch.cat(outputs)  # (H, B, Q, D)


def stacked_classifier_forward(
    classifiers: Sequence[AttentiveClassifier], x: torch.Tensor, stack_self_blocks: bool = False
) -> torch.Tensor:
    """``torch.stack([c(x) for c in classifiers])`` computed head-batched (see :func:`stacked_pooler_forward`).

    Args:
        classifiers: ``H`` :class:`AttentiveClassifier` of identical architecture.
        x: tokens ``(B, N, D)`` shared by every classifier.
        stack_self_blocks: see :func:`stacked_pooler_forward`.

    Returns:
        logits ``(H, B, C)``.
    """
    _check_same_shape(classifiers, "stacked_classifier_forward")
    pooled = stacked_pooler_forward([c.pooler for c in classifiers], x, stack_self_blocks)[
        :, :, 0
    ]  # (H, B, 1, D) → (H, B, D)
    return torch.stack([c.linear(p) for c, p in zip(classifiers, pooled.unbind(0), strict=True)])  # (H, B, C)


def supports_stacked(heads: Sequence[nn.Module]) -> bool:
    """True when ``heads`` are :class:`AttentiveClassifier` of one architecture with biased attention projections."""
    if not heads or not all(type(h) is AttentiveClassifier for h in heads):
        return False
    configs = {h.config for h in heads}  # type: ignore[union-attr]
    return len(configs) == 1 and next(iter(configs)).qkv_bias
