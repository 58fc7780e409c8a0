"""Probe layouts: official probe files and transformers VJEPA2ForVideoClassification give identical logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jepa.probes import (
    AttentiveClassifier,
    detect_probe_layout,
    hf_probe_to_official,
    infer_probe_config,
    load_probe_state_dict,
    official_probe_state_dict,
    official_probe_to_hf,
    save_official_probe,
)

DIM, HEADS, CLASSES = 64, 4, 5


@pytest.fixture(scope="module")
def hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A tiny VJEPA2ForVideoClassification with every parameter randomised (biases and norms included)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.VJEPA2Config(
        hidden_size=DIM, num_hidden_layers=2, num_attention_heads=HEADS, crop_size=32, frames_per_clip=4,
        pred_hidden_size=32, pred_num_hidden_layers=1, pred_num_attention_heads=4, num_labels=CLASSES,
    )  # fmt: skip
    model = transformers.VJEPA2ForVideoClassification(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(
                (1.0 if name.endswith("norm1.weight") or "layer_norm" in name else 0.0) + 0.1 * torch.randn_like(param)
            )
    directory = tmp_path_factory.mktemp("hf_probe")
    model.save_pretrained(directory)
    return directory, model


def _hf_head_logits(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.classifier(model.pooler(tokens))


def test_hf_checkpoint_and_official_file_give_identical_logits(hf_model_dir, tmp_path: Path) -> None:
    directory, model = hf_model_dir
    tokens = torch.randn(3, 24, DIM)
    expected = _hf_head_logits(model, tokens)

    state, layout = load_probe_state_dict(directory)
    assert layout == "hf"
    config = infer_probe_config(state, num_heads=HEADS, norm_eps=1e-6)  # transformers: encoder heads, LN eps 1e-6
    assert (config.embed_dim, config.num_classes, config.depth) == (DIM, CLASSES, 4)
    ours = AttentiveClassifier.from_config(config).eval()
    ours.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(tokens), expected, atol=1e-5, rtol=0)

    # The same weights written as an official probe file (module. prefix, classifiers list) load to the same logits.
    other = {k: torch.randn_like(v) for k, v in state.items()}
    path = save_official_probe(tmp_path / "probe.pt", [state, other], epoch=3)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"classifiers", "opt", "scaler", "epoch", "batch_size", "world_size"}
    assert all(k.startswith("module.pooler.") or k.startswith("module.linear.") for k in raw["classifiers"][0])
    from_file, layout = load_probe_state_dict(path)
    assert layout == "official"
    fresh = AttentiveClassifier.from_config(config).eval()
    fresh.load_state_dict(from_file, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(tokens), expected, atol=1e-5, rtol=0)
    second, _ = load_probe_state_dict(path, index=1)
    torch.testing.assert_close(second["linear.weight"], other["linear.weight"])


def test_end_to_end_video_logits_match_transformers(hf_model_dir) -> None:
    """Our encoder (from the same directory) + our probe reproduce the full transformers forward."""
    import jepa

    directory, model = hf_model_dir
    encoder = jepa.load_pretrained(str(directory)).encoder.eval()
    state, _ = load_probe_state_dict(directory)
    probe = AttentiveClassifier.from_config(infer_probe_config(state, num_heads=HEADS, norm_eps=1e-6)).eval()
    probe.load_state_dict(state)
    video = torch.randn(2, 4, 3, 32, 32)  # transformers layout (B, T, C, H, W)
    with torch.no_grad():
        expected = model(pixel_values_videos=video).logits
        logits = probe(encoder(video.permute(0, 2, 1, 3, 4)))
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_official_hf_round_trip_is_exact() -> None:
    torch.manual_seed(0)
    state = AttentiveClassifier(DIM, CLASSES, num_heads=HEADS).state_dict()
    hf = official_probe_to_hf({"module." + k: v for k, v in state.items()})
    assert detect_probe_layout(hf) == "hf" and detect_probe_layout(state) == "official"
    assert "pooler.self_attention_layers.2.self_attn.out_proj.weight" in hf
    torch.testing.assert_close(
        hf["pooler.cross_attention_layer.cross_attn.v_proj.weight"],
        state["pooler.cross_attention_block.xattn.kv.weight"][DIM:],
    )  # rows [k | v]
    torch.testing.assert_close(
        hf["pooler.self_attention_layers.0.self_attn.k_proj.bias"],
        state["pooler.blocks.0.attn.qkv.bias"][DIM : 2 * DIM],
    )  # rows [q | k | v]
    back = hf_probe_to_official({**hf, "vjepa2.encoder.layernorm.weight": torch.ones(DIM)})  # backbone keys ignored
    assert set(back) == set(state)
    for key, value in state.items():
        torch.testing.assert_close(back[key], value, rtol=0, atol=0)


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(IndexError, match=r"index 2 out of range \(1 saved\)"):
        official_probe_state_dict({"classifiers": [{"module.linear.weight": torch.zeros(2, 2)}]}, index=2)
    with pytest.raises(KeyError, match="verb_classifier"):
        official_probe_to_hf({"pooler.query_tokens": torch.zeros(1, 3, 4), "verb_classifier.weight": torch.zeros(2, 4)})
    with pytest.raises(KeyError, match="needs"):
        hf_probe_to_official({"pooler.cross_attention_layer.cross_attn.k_proj.weight": torch.zeros(4, 4)})
