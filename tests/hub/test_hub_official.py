"""Official `.pt` files: loading like the released files, key choice, architecture checks, error messages."""

from __future__ import annotations

import pickle

import pytest
import torch

import jepa
from jepa.hub import CheckpointError, convert, load_encoder, load_pretrained, save_official


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture
def released(tmp_path, tiny_models, write_released_like):
    target, predictor = tiny_models(0)
    context, _ = tiny_models(10)
    path = write_released_like(tmp_path / "vitt.pt", target, context, predictor)
    return path, target, context, predictor


def test_load_released_like_file_defaults_to_target_encoder(released):
    path, target, context, predictor = released
    loaded = load_pretrained(path)
    assert loaded.layout == "official"
    assert loaded.checkpoint_key == "target_encoder"
    # architecture inferred from shapes: width 192 → 3 heads (official table), 2 blocks, 10 mask tokens
    assert (loaded.encoder_config.embed_dim, loaded.encoder_config.depth, loaded.encoder_config.num_heads) == (
        192,
        2,
        3,
    )
    assert loaded.predictor_config.num_mask_tokens == 10
    _assert_same_weights(loaded.encoder, target)
    _assert_same_weights(loaded.predictor, predictor)
    assert not loaded.encoder.training
    # the released-file default differs from the context encoder
    assert not torch.equal(loaded.encoder.norm.weight, context.norm.weight)


def test_checkpoint_key_selects_the_context_encoder(released):
    path, _, context, _ = released
    loaded = load_pretrained(path, checkpoint_key="encoder")
    assert loaded.checkpoint_key == "encoder"
    _assert_same_weights(loaded.encoder, context)
    with pytest.raises(CheckpointError, match=r"checkpoint_key 'ema' not found.*target_encoder"):
        load_pretrained(path, checkpoint_key="ema")


def test_encoder_key_is_the_fallback(tmp_path, tiny_models):
    encoder, _ = tiny_models(0)
    path = tmp_path / "enc_only.pt"
    torch.save({"encoder": {f"module.backbone.{k}": v for k, v in encoder.state_dict().items()}, "epoch": 1}, path)
    loaded = load_pretrained(path)
    assert loaded.checkpoint_key == "encoder" and loaded.predictor is None
    _assert_same_weights(loaded.encoder, encoder)


def test_loaded_models_compute_like_the_originals(released):
    path, target, _, predictor = released
    loaded = load_pretrained(path)
    torch.manual_seed(0)
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encoder(video), target(video), rtol=0, atol=0)


def test_create_encoder_with_a_path(released):
    path, target, context, _ = released
    model = jepa.create_encoder("vit_tiny", pretrained=path, depth=2, img_size=32)
    _assert_same_weights(model, target)
    with pytest.raises(CheckpointError, match=r"embed_dim 192 / depth 2 \(ViT-Ti\); vit_tiny expects 192 / 3"):
        jepa.create_encoder("vit_tiny", pretrained=path, depth=3)  # 3 blocks built, 2 in the file


def test_wrong_architecture_is_refused_with_both_sizes(released):
    path = released[0]
    with pytest.raises(CheckpointError) as info:
        load_pretrained(path, architecture="vit_huge")
    message = str(info.value)
    assert "checkpoint has embed_dim 192 / depth 2 (ViT-Ti); vit_huge expects 1280 / 32" in message
    assert str(path) in message


def test_architecture_name_builds_that_config(tmp_path):
    torch.manual_seed(0)
    full = jepa.create_encoder("vit_tiny", img_size=64)
    path = tmp_path / "vit_tiny.pt"
    torch.save({"target_encoder": {f"module.backbone.{k}": v for k, v in full.state_dict().items()}}, path)
    loaded = load_pretrained(path, architecture="vit_tiny", num_heads=3)
    assert loaded.encoder_config.depth == 12 and loaded.encoder_config.img_size == 256  # the preset's config
    _assert_same_weights(loaded.encoder, full)
    assert load_encoder(path).config.num_heads == 3
    assert save_official(tmp_path / "again.pt", full).is_file()


def test_missing_unexpected_and_mismatched_keys_are_named(tmp_path, tiny_models):
    encoder, _ = tiny_models(0)
    sd = {f"module.backbone.{k}": v.clone() for k, v in encoder.state_dict().items()}
    del sd["module.backbone.blocks.1.mlp.fc2.bias"]
    sd["module.backbone.blocks.0.attn.q_norm.weight"] = torch.ones(64)
    sd["module.backbone.norm.bias"] = torch.zeros(191)
    sd["module.backbone.pos_embed"] = torch.zeros(1, 4, 192)  # ignored, never reported
    path = tmp_path / "broken.pt"
    torch.save({"target_encoder": sd}, path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(path)
    message = str(info.value)
    assert str(path) in message
    assert "missing keys (1): blocks.1.mlp.fc2.bias" in message
    assert "unexpected keys (1): blocks.0.attn.q_norm.weight" in message
    assert "shape mismatches (1): norm.bias (checkpoint (191,), model (192,))" in message
    assert "pos_embed" not in message
    # strict=False loads everything that fits
    loaded = load_pretrained(path, strict=False)
    assert torch.equal(loaded.encoder.blocks[0].attn.qkv.weight, encoder.blocks[0].attn.qkv.weight)
    assert not any(t.is_meta for t in loaded.encoder.parameters())


def test_corrupt_and_foreign_files_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=r"corrupt\.pt: not a loadable PyTorch checkpoint"):
        load_pretrained(corrupt)

    pickled = tmp_path / "object.pt"
    with open(pickled, "wb") as handle:  # an arbitrary pickled object must not be unpickled
        pickle.dump({"encoder": pytest.approx(1.0)}, handle)
    with pytest.raises(CheckpointError, match=r"object\.pt: not a loadable PyTorch checkpoint with weights_only"):
        load_pretrained(pickled)

    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(CheckpointError, match=r"list\.pt: holds a list"):
        load_pretrained(listed)

    foreign = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(2, 3, 3, 3), "fc.bias": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match=r"resnet\.pt: detect_layout: not a V-JEPA 2 checkpoint.*conv1.weight"):
        load_pretrained(foreign)

    broken_st = tmp_path / "weights.safetensors"
    broken_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match=r"weights\.safetensors: not a readable safetensors file"):
        load_pretrained(broken_st)

    probe = tmp_path / "probe.pt"
    torch.save({"classifiers": [{"module.linear.bias": torch.zeros(3)}], "epoch": 1}, probe)
    with pytest.raises(CheckpointError, match=r"probe\.pt: this is an attentive-probe checkpoint"):
        load_pretrained(probe)


def test_official_round_trip_is_lossless(tmp_path, tiny_models):
    encoder, predictor = tiny_models(0)
    jepa_dir = jepa.hub.save_pretrained(tmp_path / "jepa", encoder, predictor)
    official = convert(jepa_dir, tmp_path / "official.pt", to="official")
    raw = torch.load(official, weights_only=True)
    assert {"encoder", "target_encoder", "predictor", "epoch"} <= set(raw)
    assert all(k.startswith("module.backbone.") for k in raw["encoder"])
    assert all(k.startswith("module.backbone.") for k in raw["predictor"])
    assert [f"module.backbone.mask_tokens.{i}" in raw["predictor"] for i in range(10)] == [True] * 10
    back = convert(official, tmp_path / "jepa2", to="jepa")
    loaded = load_pretrained(back)
    assert loaded.layout == "jepa"
    assert loaded.encoder_config == encoder.config and loaded.predictor_config == predictor.config
    _assert_same_weights(loaded.encoder, encoder)
    _assert_same_weights(loaded.predictor, predictor)


def test_flat_official_state_dict(tmp_path, tiny_models):
    encoder, predictor = tiny_models(0)
    path = tmp_path / "flat.pth"
    torch.save({**encoder.state_dict(), **predictor.state_dict()}, path)
    loaded = load_pretrained(path)
    assert loaded.layout == "official" and loaded.checkpoint_key is None
    _assert_same_weights(loaded.encoder, encoder)
    _assert_same_weights(loaded.predictor, predictor)


def test_action_conditioned_predictor_is_handed_back_not_loaded(tmp_path, tiny_models):
    encoder, _ = tiny_models(0)
    ac_predictor = {"module.action_encoder.weight": torch.zeros(8, 7), "module.predictor_proj.bias": torch.zeros(192)}
    path = tmp_path / "ac.pt"
    torch.save(
        {"encoder": {f"module.{k}": v for k, v in encoder.state_dict().items()}, "predictor": ac_predictor}, path
    )
    loaded = load_pretrained(path)
    assert loaded.checkpoint_key == "encoder" and loaded.predictor is None
    assert sorted(loaded.extra) == ["ac_predictor.action_encoder.weight", "ac_predictor.predictor_proj.bias"]
    _assert_same_weights(loaded.encoder, encoder)
