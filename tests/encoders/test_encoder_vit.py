"""VideoViT behaviour: keys, masks, out_layers, image input, non-square grids, checkpointing, errors, init."""

from __future__ import annotations

import math

import pytest
import torch

from jepa.encoders import EncoderConfig, VideoViT, apply_masks


def tiny(**overrides) -> VideoViT:
    """A small encoder with large random weights (sharp attention, so RoPE changes matter)."""
    torch.manual_seed(0)
    values = {"embed_dim": 64, "depth": 3, "num_heads": 2, "img_size": 32, "num_frames": 4}
    values.update(overrides)
    model = VideoViT(EncoderConfig(**values)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.normal_(1.0 if name.endswith("norm1.weight") or name.endswith("norm2.weight") else 0.0, 0.2)
    return model


def clip(batch: int = 2, frames: int = 4, height: int = 32, width: int = 32, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(batch, 3, frames, height, width)


def test_official_state_dict_keys() -> None:
    model = tiny(depth=2)
    keys = list(model.state_dict())
    block = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]
    expected = ["patch_embed.proj.weight", "patch_embed.proj.bias"]
    for i in range(2):
        expected += [f"blocks.{i}.{name}.{kind}" for name in block for kind in ("weight", "bias")]
    expected += ["norm.weight", "norm.bias"]
    assert keys == expected
    assert model.state_dict()["patch_embed.proj.weight"].shape == (64, 3, 2, 16, 16)
    assert model.state_dict()["blocks.0.attn.qkv.weight"].shape == (192, 64)


def test_output_shapes_and_api() -> None:
    model = tiny()
    out = model(clip())
    assert out.shape == (2, 2 * 2 * 2, 64)
    assert model.num_features == model.embed_dim == 64
    assert model.patch_grid(16, 256, 384) == (8, 16, 24)
    torch.testing.assert_close(model.forward_features(clip()), out)
    final, inter = model.forward_intermediates(clip(), indices=2)
    torch.testing.assert_close(final, out)
    torch.testing.assert_close(inter, model(clip(), out_layers=[1, 2]))
    maps = model.forward_intermediates(clip(), indices=[0], output_fmt="NCTHW", intermediates_only=True)
    assert maps[0].shape == (2, 64, 2, 2, 2)
    torch.testing.assert_close(maps[0].flatten(2).transpose(1, 2), model(clip(), out_layers=[0])[0])
    raw = model.forward_intermediates(clip(), indices=[-1], norm=False, intermediates_only=True)[0]
    torch.testing.assert_close(model.norm(raw), out)


def test_out_layers_are_norm_of_block_outputs_in_order() -> None:
    model = tiny()
    video = clip()
    x = model.patch_embed(video)
    outputs = []
    for block in model.blocks:
        x = block(x, None, (2, 2))
        outputs.append(model.norm(x))
    got = model(video, out_layers=[2, 0])
    assert len(got) == 2
    torch.testing.assert_close(got[0], outputs[0])  # increasing block order
    torch.testing.assert_close(got[1], outputs[2])
    torch.testing.assert_close(model(video), outputs[2])


def test_image_input_is_repeated_to_tubelet() -> None:
    model = tiny()
    image = torch.randn(2, 3, 32, 48)
    expected = model(image.unsqueeze(2).repeat(1, 1, 2, 1, 1))
    out = model(image)
    assert out.shape == (2, 2 * 3, 64)
    torch.testing.assert_close(out, expected)


@torch.no_grad()
def test_non_square_input_uses_actual_grid() -> None:
    model = tiny()
    video = clip(height=32, width=64)  # grid (2, 4)
    x = model.patch_embed(video)
    for block in model.blocks:
        x = block(x, None, (2, 4))
    torch.testing.assert_close(model(video), model.norm(x))
    square_grid = tiny(handle_nonsquare_inputs=False)  # official fallback: construction grid (2, 2)
    assert float((square_grid(video) - model(video)).abs().max()) > 1e-3
    torch.testing.assert_close(square_grid(clip()), model(clip()))  # identical for square inputs


def test_masks_full_keep_equals_unmasked_and_lists_concat_on_batch() -> None:
    model = tiny()
    video = clip()
    full = torch.arange(8).expand(2, -1).clone()
    torch.testing.assert_close(model(video, masks=[full]), model(video))
    torch.testing.assert_close(model(video, masks=full), model(video))  # single tensor accepted
    a, b = torch.tensor([[0, 3, 5], [1, 2, 7]]), torch.tensor([[6, 4, 2], [0, 1, 2]])
    both = model(video, masks=[a, b])
    assert both.shape == (4, 3, 64)
    torch.testing.assert_close(both[:2], model(video, masks=a))
    torch.testing.assert_close(both[2:], model(video, masks=b))


def test_masked_forward_runs_blocks_on_kept_tokens_non_square() -> None:
    model = tiny()
    video = clip(height=32, width=48)  # grid (2, 3), 12 tokens
    keep = torch.tensor([[11, 0, 4, 7], [2, 3, 9, 10]])
    x = apply_masks(model.patch_embed(video), [keep])
    for block in model.blocks:
        x = block(x, keep, (2, 3))
    torch.testing.assert_close(model(video, masks=[keep]), model.norm(x))


@torch.no_grad()
def test_interleaved_mode_differs_from_official() -> None:
    official = tiny()
    interleaved = tiny(rope_mode="interleaved")
    interleaved.load_state_dict(official.state_dict())
    assert float((official(clip()) - interleaved(clip())).abs().max()) > 1e-3


def test_activation_checkpointing_same_outputs_and_grads() -> None:
    model = tiny().train()
    calls = {"n": 0}
    model.blocks[0].register_forward_pre_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    video = clip()

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        out = model(video)
        (out.square().mean() + out[:, 0].sum()).backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    out_plain, grads_plain = run()
    assert calls["n"] == 1
    model.set_grad_checkpointing(True)
    calls["n"] = 0
    out_ckpt, grads_ckpt = run()
    assert calls["n"] == 2  # the block was recomputed in backward: checkpointing is active
    torch.testing.assert_close(out_ckpt, out_plain, rtol=0, atol=1e-6)
    for g_ckpt, g_plain in zip(grads_ckpt, grads_plain, strict=True):
        torch.testing.assert_close(g_ckpt, g_plain, rtol=0, atol=1e-6)
    calls["n"] = 0
    with torch.no_grad():
        model(video)
    assert calls["n"] == 1  # no checkpointing without grad


def test_no_weight_decay_names() -> None:
    names = tiny(depth=1).no_weight_decay()
    assert {"blocks.0.attn.qkv.bias", "norm.weight", "norm.bias", "blocks.0.norm1.weight"} <= names
    assert "patch_embed.proj.bias" in names
    assert not names & {"blocks.0.attn.qkv.weight", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight"}


def test_official_init_statistics() -> None:
    torch.manual_seed(0)
    model = VideoViT(EncoderConfig(embed_dim=384, depth=4, num_heads=6))
    sd = model.state_dict()
    for layer in (1, 4):
        expected = 0.02 / math.sqrt(2 * layer)
        assert sd[f"blocks.{layer - 1}.attn.proj.weight"].std().item() == pytest.approx(expected, rel=0.02)
        assert sd[f"blocks.{layer - 1}.mlp.fc2.weight"].std().item() == pytest.approx(expected, rel=0.02)
    assert sd["blocks.3.attn.qkv.weight"].std().item() == pytest.approx(0.02, rel=0.02)
    assert sd["patch_embed.proj.weight"].std().item() == pytest.approx(0.02, rel=0.02)
    assert torch.all(sd["blocks.2.mlp.fc1.bias"] == 0) and torch.all(sd["norm.weight"] == 1)


@pytest.mark.parametrize(
    "shape,error,match",
    [
        ((2, 4, 3, 32, 32), ValueError, r"transformers layout \(B, T, C, H, W\).*permute\(0, 2, 1, 3, 4\)"),
        ((2, 4, 32, 32, 3), ValueError, r"channels-last.*permute\(0, 4, 1, 2, 3\)"),
        ((2, 32, 32, 3), ValueError, r"image must be \(B, C=3, H, W\).*channels-last"),
        ((2, 3, 3, 32, 32), ValueError, r"T=3 frames is not a multiple of tubelet_size=2"),
        ((2, 3, 4, 32, 40), ValueError, r"W=40 must be multiples of patch_size=16"),
        ((3, 32, 32), ValueError, r"got 3-D shape"),
    ],
)
def test_bad_video_errors(shape, error, match) -> None:
    with pytest.raises(error, match=match):
        tiny(depth=1)(torch.zeros(shape))


def test_integer_video_rejected() -> None:
    with pytest.raises(TypeError, match="float video"):
        tiny(depth=1)(torch.zeros(1, 3, 2, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize(
    "masks,error,match",
    [
        ([torch.tensor([[0, 8], [1, 2]])], ValueError, r"masks\[0\]: token ids must lie in \[0, 8\).*max 8"),
        ([torch.tensor([[0, -1], [1, 2]])], ValueError, r"must lie in \[0, 8\)"),
        ([torch.tensor([[0, 1], [1, 2]], dtype=torch.int32)], TypeError, r"expected an int64 tensor.*int32"),
        ([torch.ones(2, 8, dtype=torch.bool)], TypeError, r"boolean masks are not accepted"),
        ([torch.tensor([0, 1])], ValueError, r"expected shape \(B=2, K\), got \(2,\)"),
        ([torch.tensor([[0, 1]])], ValueError, r"expected shape \(B=2, K\), got \(1, 2\)"),
        ([torch.tensor([[0, 1], [1, 2]]), torch.tensor([[0], [1]])], ValueError, r"same number of tokens K"),
        ("bad", TypeError, r"expected a \(B, K\) int64 tensor or a list"),
    ],
)
def test_bad_mask_errors(masks, error, match) -> None:
    with pytest.raises(error, match=match):
        tiny(depth=1)(clip(), masks=masks)


def test_bad_out_layer_index() -> None:
    with pytest.raises(ValueError, match="layer index 3 out of range for depth 3"):
        tiny()(clip(), out_layers=[3])


def test_pretrained_methods_delegate_to_hub(monkeypatch, tmp_path) -> None:
    import sys
    import types

    calls = {}
    fake = types.ModuleType("jepa.hub")
    model = tiny(depth=1)
    fake.load_pretrained = lambda source, **kw: (
        calls.update(load=(source, kw)) or types.SimpleNamespace(encoder=model, predictor=None)
    )
    fake.save_pretrained = lambda directory, **kw: calls.update(save=(directory, kw))
    monkeypatch.setitem(sys.modules, "jepa.hub", fake)
    assert VideoViT.from_pretrained("some/repo", revision="x") is model
    assert calls["load"] == ("some/repo", {"revision": "x"})
    model.save_pretrained(tmp_path)
    assert calls["save"] == (tmp_path, {"encoder": model})
