"""Encoder presets: parameter counts (meta device), registry entries, architecture inference."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import jepa.encoders  # noqa: F401  (registers the presets)
from jepa.encoders import PRESETS, RELEASED, VideoViT, infer_encoder_config, preset_config
from jepa.registry import ENCODERS


def meta_model(name: str, **overrides) -> VideoViT:
    with torch.device("meta"):
        return ENCODERS.build(name, **overrides)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name,millions",
    [("vit_large", 303.9), ("vit_huge", 631.6), ("vit_giant", 1012.2), ("vit_gigantic", 1598.5)],
)
def test_parameter_counts_match_spec(name: str, millions: float) -> None:
    assert round(count(meta_model(name)) / 1e6, 1) == millions


@pytest.mark.parametrize(
    "name,dim,depth,heads,hidden",
    [
        ("vit_tiny", 192, 12, 3, 768),
        ("vit_small", 384, 12, 6, 1536),
        ("vit_base", 768, 12, 12, 3072),
        ("vit_large", 1024, 24, 16, 4096),
        ("vit_huge", 1280, 32, 16, 5120),
        ("vit_giant", 1408, 40, 22, 6144),
        ("vit_giant_16heads", 1408, 40, 16, 6144),
        ("vit_gigantic", 1664, 48, 26, 6656),
        ("vit_gigantic_16heads", 1664, 48, 16, 6656),
    ],
)
def test_preset_table(name: str, dim: int, depth: int, heads: int, hidden: int) -> None:
    cfg = PRESETS[name]
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_hidden_dim) == (dim, depth, heads, hidden)
    assert (cfg.patch_size, cfg.tubelet_size, cfg.qkv_bias, cfg.norm_eps) == (16, 2, True, 1e-6)


def test_giant_means_22_heads_of_64() -> None:
    model = meta_model("vit_giant")
    assert model.blocks[0].attn.num_heads == 22 and model.blocks[0].attn.head_dim == 64


def test_released_entries() -> None:
    expected = {
        "vjepa2_vitl_256": ("facebook/vjepa2-vitl-fpc64-256", 1024, 256),
        "vjepa2_vith_256": ("facebook/vjepa2-vith-fpc64-256", 1280, 256),
        "vjepa2_vitg_256": ("facebook/vjepa2-vitg-fpc64-256", 1408, 256),
        "vjepa2_vitg_384": ("facebook/vjepa2-vitg-fpc64-384", 1408, 384),
    }
    assert set(RELEASED) == set(expected)
    for name, (weights, dim, img) in expected.items():
        entry = ENCODERS.get(name)
        assert entry.weights == weights and entry.checkpoint_key == "target_encoder"
        cfg = meta_model(name).config
        assert (cfg.embed_dim, cfg.img_size, cfg.num_frames) == (dim, img, 64)
    assert meta_model("vjepa2_vitg_384").config.num_heads == 22


def test_builder_overrides_and_errors() -> None:
    model = ENCODERS.build("vit_tiny", depth=2, rope_mode="interleaved")
    assert len(model.blocks) == 2 and model.config.rope_mode == "interleaved"
    assert model(torch.zeros(1, 3, 2, 32, 32)).shape == (1, 4, 192)
    with pytest.raises(TypeError, match=r"unknown EncoderConfig fields \['depht'\]"):
        preset_config("vit_tiny", depht=2)
    assert PRESETS["vit_tiny"].depth == 12  # presets are not mutated by overrides


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_infer_encoder_config_round_trip(name: str) -> None:
    model = meta_model(name)
    state = {f"module.backbone.{k}": v for k, v in model.state_dict().items()}  # official prefixes
    state["module.backbone.pos_embed"] = torch.empty(1, 1, 1, device="meta")
    heads = PRESETS[name].num_heads if name.endswith("16heads") else None
    inferred = infer_encoder_config(state, num_heads=heads)
    assert inferred == PRESETS[name]
    with torch.device("meta"):
        VideoViT(inferred).load_state_dict(model.state_dict(), strict=True)


def test_infer_encoder_config_overrides_and_errors() -> None:
    state = meta_model("vit_tiny", depth=2).state_dict()
    cfg = infer_encoder_config(state, img_size=384, rope_mode="interleaved")
    assert (cfg.depth, cfg.img_size, cfg.rope_mode) == (2, 384, "interleaved")
    with pytest.raises(KeyError, match="patch_embed.proj.weight"):
        infer_encoder_config({"blocks.0.norm1.weight": torch.zeros(3)})
    odd = dataclasses.replace(PRESETS["vit_tiny"], embed_dim=96, num_heads=2, depth=1)
    with torch.device("meta"):
        odd_state = VideoViT(odd).state_dict()
    with pytest.raises(ValueError, match="width 96 has no official head count"):
        infer_encoder_config(odd_state)
    assert infer_encoder_config(odd_state, num_heads=2).num_heads == 2
