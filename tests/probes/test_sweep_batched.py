"""Head-batched probe sweep (jepa.probes.batched): same outputs, gradients and optimizer trajectories as the loop."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jepa.probes import AttentiveClassifier, ProbeSweep, load_probe_state_dict, save_official_probe, sweep_grid
from jepa.probes.batched import stacked_classifier_forward, stacked_pooler_forward, supports_stacked

DIM, CLASSES = 32, 5


def _perturbed(depth: int, seed: int, **kwargs) -> AttentiveClassifier:
    """A classifier whose LayerNorm affines and biases are far from their (1, 0) init, so folding them is tested."""
    torch.manual_seed(seed)
    head = AttentiveClassifier(DIM, CLASSES, num_heads=4, depth=depth, **kwargs)
    with torch.no_grad():
        for param in head.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return head


def _params(heads: list[nn.Module]) -> list[torch.Tensor]:
    return [p for head in heads for p in head.parameters()]


@pytest.mark.parametrize(
    ("depth", "stack_self_blocks", "checkpointing"),
    [(1, False, False), (3, False, False), (3, True, False), (2, False, True), (2, True, True)],
)
def test_outputs_and_gradients_match_the_loop(depth: int, stack_self_blocks: bool, checkpointing: bool) -> None:
    heads = [_perturbed(depth, seed, use_activation_checkpointing=checkpointing) for seed in range(3)]
    torch.manual_seed(10)
    tokens = torch.randn(2, 9, DIM) * 2.0 + 0.5
    weights = torch.randn(3, 2, CLASSES)  # a different cotangent per head and sample
    reference = torch.stack([head(tokens) for head in heads])  # (H, B, C)
    expected = torch.autograd.grad((reference * weights).sum(), _params(heads))
    batched = stacked_classifier_forward(heads, tokens, stack_self_blocks=stack_self_blocks)
    assert batched.shape == (3, 2, CLASSES)
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad((batched * weights).sum(), _params(heads))
    for (name, _), got, want in zip(heads[0].named_parameters(), grads, expected, strict=False):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=f"gradient of {name}")
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_pooler_with_several_queries_matches() -> None:
    from jepa.probes import AttentivePooler

    torch.manual_seed(0)
    poolers = [AttentivePooler(DIM, num_queries=3, num_heads=4, depth=d) for d in (1, 1)]
    tokens = torch.randn(2, 6, DIM)
    torch.testing.assert_close(
        stacked_pooler_forward(poolers, tokens), torch.stack([p(tokens) for p in poolers]), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match=r"expected tokens \(B, N, D=32\)"):
        stacked_pooler_forward(poolers, tokens[..., :8])


def test_stacked_sweep_trains_like_the_loop_and_heads_with_different_lrs_diverge() -> None:
    """Four heads from one initial state: LRs (1e-2, 1e-2, 1e-3, 1e-2) and WDs (0, 0, 0, 0.5)."""
    hparams = sweep_grid([1e-2], [0.0]) * 2 + sweep_grid([1e-3], [0.0]) + sweep_grid([1e-2], [0.5])
    start = _perturbed(2, seed=0).state_dict()

    def make(stacked: bool) -> ProbeSweep:
        sweep = ProbeSweep.build(lambda: AttentiveClassifier(DIM, CLASSES, num_heads=4, depth=2), hparams, stacked)
        for head in sweep.heads:
            head.load_state_dict(start)
        return sweep

    stacked, loop = make(True), make(False)
    torch.manual_seed(1)
    tokens, labels = torch.randn(4, 7, DIM), torch.randint(0, CLASSES, (4,))
    optimizers = []
    for sweep in (stacked, loop):
        optimizer = sweep.build_optimizer(total_steps=6, max_epochs=2, betas=(0.9, 0.999), eps=1e-8)
        for step in range(1, 7):
            sweep.apply_schedules(optimizer, step)
            loss = sum(F.cross_entropy(logits, labels) for logits in sweep(tokens))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        optimizers.append(optimizer)
    assert [len(g["params"]) for g in optimizers[0].param_groups] == [len(list(stacked.heads[0].parameters()))] * 4
    for (name, a), b in zip(stacked.named_parameters(), loop.parameters(), strict=True):
        # A key bias shifts all scores of a query equally (no effect on any output): its true gradient is 0, and
        # Adam normalises the round-off left in its place (0 exactly in the batched cross-attention) into LR-sized
        # steps, so its values may differ. The query and value biases must agree.
        if name.endswith("xattn.kv.bias"):
            a, b = a[DIM:], b[DIM:]
        elif name.endswith("attn.qkv.bias"):
            a, b = torch.cat([a[:DIM], a[2 * DIM :]]), torch.cat([b[:DIM], b[2 * DIM :]])
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    for got, want in zip(stacked(tokens), loop(tokens), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)

    def flat(index: int) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in stacked.heads[index].parameters()])

    initial = torch.cat([t.flatten() for t in start.values()])
    assert not torch.equal(flat(0), initial)  # every head trained
    torch.testing.assert_close(flat(0), flat(1), rtol=1e-5, atol=1e-6)  # same settings: same trajectory
    assert (flat(0) - flat(2)).abs().max() > 1e-3  # another LR: another trajectory
    assert (flat(0) - flat(3)).abs().max() > 1e-4  # another WD: another trajectory


def test_state_dict_keys_and_official_probe_round_trip(tmp_path: Path) -> None:
    heads = [_perturbed(2, seed) for seed in range(2)]
    stacked = ProbeSweep([copy.deepcopy(h) for h in heads], sweep_grid([1e-3, 1e-4], [0.01]), stacked=True)
    loop = ProbeSweep(heads, sweep_grid([1e-3, 1e-4], [0.01]))
    assert list(stacked.state_dict()) == list(loop.state_dict())
    assert "heads.1.pooler.blocks.0.attn.qkv.weight" in stacked.state_dict()
    path = save_official_probe(tmp_path / "probe.pt", [h.state_dict() for h in stacked.heads])
    state, layout = load_probe_state_dict(path, index=1)
    assert layout == "official"
    fresh = ProbeSweep(
        [AttentiveClassifier(DIM, CLASSES, num_heads=4, depth=2) for _ in range(2)], loop.head_hparams, stacked=True
    )
    fresh.heads[1].load_state_dict(state, strict=True)
    fresh.heads[0].load_state_dict(load_probe_state_dict(path, index=0)[0], strict=True)
    tokens = torch.randn(3, 5, DIM)
    for got, want in zip(fresh(tokens), loop(tokens), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_unsupported_heads_fall_back_to_the_loop_or_are_refused() -> None:
    mixed = [AttentiveClassifier(DIM, CLASSES, num_heads=4, depth=2), AttentiveClassifier(DIM, CLASSES, 4, depth=1)]
    assert not supports_stacked(mixed)
    assert not supports_stacked([AttentiveClassifier(DIM, CLASSES, num_heads=4, qkv_bias=False)])
    sweep = ProbeSweep(mixed, sweep_grid([1e-3, 1e-4], [0.01]), stacked=True)
    tokens = torch.randn(1, 4, DIM)
    for got, head in zip(sweep(tokens), mixed, strict=True):  # the loop path
        torch.testing.assert_close(got, head(tokens))
    with pytest.raises(TypeError, match="AttentiveClassifier heads of one architecture"):
        sweep.forward_stacked(tokens)
    with pytest.raises(ValueError, match="head 1 has parameters"):
        stacked_classifier_forward(mixed, tokens)
