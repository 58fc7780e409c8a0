"""MaskPredictor: keys, sorting semantics, mask tokens, target-range limit, grid option, errors, presets."""

from __future__ import annotations

import pytest
import torch

from jepa.predictors import MaskPredictor, PredictorConfig, infer_predictor_config
from jepa.registry import PREDICTORS


def tiny(**overrides) -> MaskPredictor:
    """A small predictor (hd 32 → RoPE 10/10/10 + 2) with large random weights and distinct mask tokens."""
    torch.manual_seed(0)
    values = {"encoder_dim": 48, "embed_dim": 64, "depth": 2, "num_heads": 2, "img_size": 64, "num_frames": 4}
    values.update(overrides)
    model = MaskPredictor(PredictorConfig(**values)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.normal_(1.0 if name.endswith(("norm1.weight", "norm2.weight")) else 0.0, 0.2)
    return model


def inputs(batch: int = 2, num_ctx: int = 6, num_tgt: int = 5, total: int = 32, seed: int = 1):
    torch.manual_seed(seed)
    perms = torch.stack([torch.randperm(total) for _ in range(batch)])
    ctx, tgt = perms[:, :num_ctx], perms[:, num_ctx : num_ctx + num_tgt]
    return torch.randn(batch, num_ctx, 48), ctx, tgt


def test_official_keys_and_shapes() -> None:
    with torch.device("meta"):
        model = MaskPredictor(PredictorConfig(encoder_dim=1024))
    sd = model.state_dict()
    assert [k for k in sd if k.startswith("mask_tokens")] == [f"mask_tokens.{i}" for i in range(10)]
    assert sd["mask_tokens.0"].shape == (1, 1, 384)
    assert all(torch.all(t == 0) for t in MaskPredictor(PredictorConfig(encoder_dim=8, depth=1)).mask_tokens)
    assert sd["predictor_embed.weight"].shape == (384, 1024)
    assert sd["predictor_proj.weight"].shape == (1024, 384)
    assert sd["predictor_blocks.11.attn.qkv.weight"].shape == (1152, 384)
    assert {"predictor_norm.weight", "predictor_blocks.0.mlp.fc2.bias"} <= set(sd)
    assert len([k for k in sd if k.startswith("predictor_blocks.0.")]) == 12
    assert "mask_tokens.0" not in model.no_weight_decay()
    assert "predictor_blocks.0.attn.qkv.bias" in model.no_weight_decay()


@pytest.mark.parametrize("encoder_dim,millions", [(1024, 22.1), (1280, 22.3), (1408, 22.4)])
def test_parameter_counts_match_spec(encoder_dim: int, millions: float) -> None:
    with torch.device("meta"):
        model = PREDICTORS.build("vjepa2_predictor", encoder_dim=encoder_dim)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions


def test_mask_token_init_options() -> None:
    torch.manual_seed(0)
    random_tokens = MaskPredictor(PredictorConfig(encoder_dim=32, depth=1, zero_init_mask_tokens=False))
    assert all(float(t.detach().std()) == pytest.approx(0.02, rel=0.3) for t in random_tokens.mask_tokens)


@torch.no_grad()
def test_invariant_to_context_order_and_follows_target_order() -> None:
    model = tiny()
    x, ctx, tgt = inputs()
    out = model(x, ctx, tgt)
    assert out.shape == (2, 5, 48)
    perm = torch.randperm(ctx.shape[1])
    torch.testing.assert_close(model(x[:, perm], ctx[:, perm], tgt), out, atol=1e-5, rtol=1e-5)
    tperm = torch.tensor([4, 2, 0, 1, 3])
    torch.testing.assert_close(model(x, ctx, tgt[:, tperm]), out[:, tperm], atol=1e-5, rtol=1e-5)
    # the prediction of a target depends on its position: swapping target ids across samples changes it
    assert float((model(x, ctx, tgt.flip(0)) - out).abs().max()) > 1e-3


@torch.no_grad()
def test_single_element_lists_equal_tensors() -> None:
    model = tiny()
    x, ctx, tgt = inputs()
    torch.testing.assert_close(model(x, [ctx], [tgt]), model(x, ctx, tgt))


@torch.no_grad()
def test_mask_index_selects_token_modulo_count() -> None:
    model = tiny()
    x, ctx, tgt = inputs()
    torch.testing.assert_close(model(x, ctx, tgt, mask_index=11), model(x, ctx, tgt))  # default index 1
    assert float((model(x, ctx, tgt, mask_index=0) - model(x, ctx, tgt)).abs().max()) > 1e-3
    with torch.no_grad():
        model.mask_tokens[0].copy_(model.mask_tokens[1])
    torch.testing.assert_close(model(x, ctx, tgt, mask_index=0), model(x, ctx, tgt))


@torch.no_grad()
def test_matches_manual_sorted_reference() -> None:
    """Spec §10.3 step by step with a python loop per sample (sort, blocks, norm, unsort, proj)."""
    model = tiny()
    x, ctx, tgt = inputs()
    out = model(x, ctx, tgt, mask_index=3)
    for b in range(2):
        tokens = torch.cat([model.predictor_embed(x[b]), model.mask_tokens[3][0].expand(5, -1)])
        ids = torch.cat([ctx[b], tgt[b]])
        order = sorted(range(len(ids)), key=lambda i: int(ids[i]))
        h = tokens[order][None]
        for block in model.predictor_blocks:
            h = block(h, ids[order][None], (4, 4))
        h = model.predictor_norm(h)[0]
        restored = torch.empty_like(h)
        restored[order] = h
        torch.testing.assert_close(out[b], model.predictor_proj(restored[6:]), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_target_range_limit_and_transformers_behaviour() -> None:
    model = tiny()  # num_patches = (4/2)·4·4 = 32
    x, ctx, _ = inputs()
    far = torch.tensor([[40, 3], [5, 33]])
    with pytest.raises(ValueError, match=r"masks_y\[0\]: token ids must lie in \[0, 32\).*max 40"):
        model(x, ctx, far)
    lenient = tiny(strict_target_range=False)
    assert lenient(x, ctx, far).shape == (2, 2, 48)


@torch.no_grad()
def test_grid_option() -> None:
    model = tiny()
    x, ctx, tgt = inputs()
    torch.testing.assert_close(model(x, ctx, tgt, grid=(4, 4)), model(x, ctx, tgt))  # square: same as default
    assert float((model(x, ctx, tgt, grid=(2, 8)) - model(x, ctx, tgt)).abs().max()) > 1e-3


def test_interleaved_mode_differs() -> None:
    official, interleaved = tiny(), tiny(rope_mode="interleaved")
    interleaved.load_state_dict(official.state_dict())
    x, ctx, tgt = inputs()
    with torch.no_grad():
        assert float((official(x, ctx, tgt) - interleaved(x, ctx, tgt)).abs().max()) > 1e-3


def test_activation_checkpointing_same_outputs_and_grads() -> None:
    model = tiny().train()
    x, ctx, tgt = inputs()

    def run():
        model.zero_grad()
        out = model(x, ctx, tgt)
        out.square().mean().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = run()
    model.set_grad_checkpointing(True)
    ckpt = run()
    torch.testing.assert_close(ckpt[0], plain[0], rtol=0, atol=1e-6)
    assert len(ckpt[1]) == len(plain[1])
    for a, b in zip(ckpt[1], plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "kind,match",
    [
        ("x_dim", r"x must be \(B, Nc, D_enc=48\)"),
        ("ctx_len", r"masks_x keeps 5 tokens but x has 6"),
        ("two_masks", r"masks_y must be one \(B, K\) tensor or a 1-element list, got 2"),
        ("dtype", r"masks_x\[0\]: expected an int64 tensor"),
        ("batch", r"masks_y\[0\]: expected shape \(B=2, K\)"),
    ],
)
def test_errors(kind: str, match: str) -> None:
    model = tiny(depth=1)
    x, ctx, tgt = inputs()
    if kind == "x_dim":
        x = torch.randn(2, 6, 40)
    elif kind == "ctx_len":
        ctx = ctx[:, :5]
    elif kind == "two_masks":
        tgt = [tgt, tgt]
    elif kind == "dtype":
        ctx = ctx.int()
    elif kind == "batch":
        tgt = tgt[:1]
    with pytest.raises((ValueError, TypeError), match=match):
        model(x, ctx, tgt)


def test_infer_predictor_config_round_trip() -> None:
    with torch.device("meta"):
        model = PREDICTORS.build("vjepa2_predictor", encoder_dim=1408, img_size=384)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.predictor_pos_embed"] = torch.empty(1, device="meta")
    inferred = infer_predictor_config(state, img_size=384)
    assert inferred == model.config
    assert (inferred.encoder_dim, inferred.num_mask_tokens, inferred.depth, inferred.num_heads) == (1408, 10, 12, 12)
    with pytest.raises(KeyError, match="predictor_embed.weight"):
        infer_predictor_config({"blocks.0.norm1.weight": torch.zeros(1)})
