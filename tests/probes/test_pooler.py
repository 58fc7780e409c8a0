"""AttentivePooler / AttentiveClassifier: official key names, init, sizes, permutation invariance, checkpointing."""

from __future__ import annotations

import math

import pytest
import torch

from jepa.probes import AttentiveClassifier, AttentivePooler

OFFICIAL_BLOCK_KEYS = [
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
    "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
]  # fmt: skip
OFFICIAL_CROSS_KEYS = [
    "norm1.weight", "norm1.bias", "xattn.q.weight", "xattn.q.bias", "xattn.kv.weight", "xattn.kv.bias",
    "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
]  # fmt: skip


def test_state_dict_keys_and_shapes_match_official_probe() -> None:
    dim, classes = 32, 7
    model = AttentiveClassifier(dim, classes, num_heads=4)
    sd = model.state_dict()
    expected = {"pooler.query_tokens", "linear.weight", "linear.bias"}
    expected |= {f"pooler.blocks.{k}.{name}" for k in range(3) for name in OFFICIAL_BLOCK_KEYS}
    expected |= {f"pooler.cross_attention_block.{name}" for name in OFFICIAL_CROSS_KEYS}
    assert set(sd) == expected
    assert sd["pooler.query_tokens"].shape == (1, 1, dim)
    assert sd["pooler.blocks.0.attn.qkv.weight"].shape == (3 * dim, dim)
    assert sd["pooler.cross_attention_block.xattn.kv.weight"].shape == (2 * dim, dim)
    assert sd["pooler.cross_attention_block.mlp.fc1.weight"].shape == (4 * dim, dim)
    assert sd["linear.weight"].shape == (classes, dim)
    assert model.pooler.blocks[0].norm1.eps == 1e-5  # official LayerNorm default


@pytest.mark.parametrize(("dim", "expected_millions"), [(1024, 49.5), (1408, 93.5)])
def test_parameter_count_matches_released_ssv2_probes(dim: int, expected_millions: float) -> None:
    with torch.device("meta"):
        model = AttentiveClassifier(dim, 174, num_heads=16)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == expected_millions


def test_official_init_rescales_residual_projections() -> None:
    torch.manual_seed(0)
    pooler = AttentivePooler(256, num_heads=4, depth=4)
    for k, block in enumerate(pooler.blocks):
        expected = 0.02 / math.sqrt(2 * (k + 1))
        for weight in (block.attn.proj.weight, block.mlp.fc2.weight):
            assert weight.std().item() == pytest.approx(
                expected, rel=0.05
            )  # bounds ±2 are absolute: no truncation at std 0.02
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert torch.all(block.attn.qkv.bias == 0) and torch.all(block.norm1.weight == 1)
    cross_fc2 = pooler.cross_attention_block.mlp.fc2.weight
    assert cross_fc2.std().item() == pytest.approx(0.02 / math.sqrt(6), rel=0.05)
    assert pooler.query_tokens.std().item() == pytest.approx(0.02, rel=0.25)


def test_pooler_has_no_positional_information() -> None:
    """Permuting the input tokens leaves the pooled output unchanged (no RoPE, no position embedding)."""
    torch.manual_seed(0)
    pooler = AttentivePooler(32, num_queries=3, num_heads=4, depth=3).eval()
    tokens = torch.randn(2, 20, 32)
    permuted = tokens[:, torch.randperm(20)]
    out = pooler(tokens)
    assert out.shape == (2, 3, 32)
    torch.testing.assert_close(pooler(permuted), out, atol=1e-5, rtol=1e-5)


def test_cross_attention_matches_hand_computation() -> None:
    """q ← q + softmax(q Wq (LN(x) Wk)ᵀ / √hd) LN(x) Wv, no output projection; one head for readability."""
    torch.manual_seed(0)
    pooler = AttentivePooler(8, num_heads=1, depth=1)
    block = pooler.cross_attention_block
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.3)
    x = torch.randn(1, 5, 8)
    q0 = pooler.query_tokens
    xn = block.norm1(x)
    q = q0 @ block.xattn.q.weight.T + block.xattn.q.bias
    k_weight, v_weight = block.xattn.kv.weight.chunk(2)
    k_bias, v_bias = block.xattn.kv.bias.chunk(2)
    attn = torch.softmax(q @ (xn @ k_weight.T + k_bias).transpose(1, 2) / math.sqrt(8), dim=-1)
    y = q0 + attn @ (xn @ v_weight.T + v_bias)
    y = y + block.mlp(block.norm2(y))
    torch.testing.assert_close(pooler(x), y, atol=1e-5, rtol=1e-5)


def test_activation_checkpointing_gives_same_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    plain = AttentiveClassifier(32, 5, num_heads=4)
    ckpt = AttentiveClassifier(32, 5, num_heads=4, use_activation_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    tokens = torch.randn(2, 12, 32)
    for model in (plain, ckpt):
        model.train()
        model(tokens).square().sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_wrong_token_width_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"D=32"):
        AttentiveClassifier(32, 5, num_heads=4)(torch.randn(2, 10, 16))
