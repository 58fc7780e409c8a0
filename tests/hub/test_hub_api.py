"""Top-level API: ``jepa.create_encoder``, ``jepa.list_encoders``, ``jepa.load_pretrained``, ``__version__``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import jepa
from jepa.hub import save_pretrained
from jepa.registry import ENCODERS, RegistryEntry, UnknownNameError


def test_list_encoders():
    names = jepa.list_encoders()
    assert names == sorted(names)
    assert {"vit_large", "vit_giant", "vjepa2_vitl_256", "vjepa2_vitg_384"} <= set(names)
    assert jepa.list_encoders("vjepa2_*") == [
        "vjepa2_vitg_256",
        "vjepa2_vitg_384",
        "vjepa2_vith_256",
        "vjepa2_vitl_256",
    ]


def test_create_encoder_random_with_overrides():
    torch.manual_seed(0)
    model = jepa.create_encoder("vit_tiny", depth=1, img_size=64)
    assert (model.config.embed_dim, model.config.depth, model.config.img_size) == (192, 1, 64)
    with pytest.raises(UnknownNameError, match="Did you mean: vit_tiny"):
        jepa.create_encoder("vit_tinny")


def test_create_encoder_pretrained_true_uses_the_registry_weights(tmp_path, tiny_models, monkeypatch):
    encoder, predictor = tiny_models(0)
    directory = save_pretrained(tmp_path / "weights", encoder, predictor)
    base = ENCODERS.get("vit_tiny").builder
    monkeypatch.setitem(
        ENCODERS._entries,
        "tiny_with_weights",
        RegistryEntry("tiny_with_weights", lambda **kw: base(**{"depth": 2, **kw}), weights=str(directory)),
    )
    model = jepa.create_encoder("tiny_with_weights", pretrained=True)
    for key, value in encoder.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    with pytest.raises(jepa.hub.CheckpointError, match=r"depth 2 \(ViT-Ti\); tiny_with_weights expects 192 / 1"):
        jepa.create_encoder("tiny_with_weights", pretrained=True, depth=1)
    with pytest.raises(ValueError, match="'vit_tiny' has no default weights"):
        jepa.create_encoder("vit_tiny", pretrained=True, depth=1)


def test_create_encoder_checks_heads_recorded_in_the_checkpoint(tmp_path, tiny_models):
    encoder, _ = tiny_models(0)
    directory = save_pretrained(tmp_path / "weights", encoder)
    with pytest.raises(jepa.hub.CheckpointError, match="num_heads 3 vs 6"):
        jepa.create_encoder("vit_tiny", pretrained=directory, depth=2, num_heads=6)


def test_load_pretrained_top_level_and_version(tmp_path, tiny_models):
    encoder, _ = tiny_models(0)
    loaded = jepa.load_pretrained(save_pretrained(tmp_path / "enc", encoder))
    assert loaded.predictor is None and loaded.layout == "jepa"
    assert loaded.config["format"] == "jepa" and loaded.config["predictor"] is None
    assert isinstance(jepa.__version__, str) and jepa.__version__


def test_import_jepa_stays_light():
    heavy = "('lightning', 'transformers', 'huggingface_hub', 'safetensors', 'torchvision', 'timm')"
    code = f"import sys, jepa, jepa.hub; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip() == "[]"
