"""transformers layout: parity with ``VJEPA2Model`` and lossless round trips through every layout."""

from __future__ import annotations

import json

import pytest
import torch

from jepa.encoders import apply_masks
from jepa.hub import convert, load_pretrained, save_pretrained

transformers = pytest.importorskip("transformers")

HF_TINY = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    pred_hidden_size=48,
    pred_num_hidden_layers=2,
    pred_num_attention_heads=4,
    crop_size=32,
    frames_per_clip=4,
)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tiny random ``VJEPA2Model`` (all parameters perturbed, mask tokens non-zero) saved by transformers."""
    torch.manual_seed(0)
    model = transformers.VJEPA2Model(transformers.VJEPA2Config(**HF_TINY)).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    directory = tmp_path_factory.mktemp("hf")
    model.save_pretrained(directory)
    return directory, model


def _assert_state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_hf_directory_matches_transformers_outputs(hf_dir):
    directory, model = hf_dir
    loaded = load_pretrained(directory)
    assert loaded.layout == "hf"
    assert loaded.encoder_config.num_heads == 4 and loaded.predictor_config.num_mask_tokens == 10
    torch.manual_seed(2)
    video = torch.randn(2, 4, 3, 32, 32)  # transformers layout (B, T, C, H, W); 2·2·2 = 8 tokens
    with torch.no_grad():
        reference = model(pixel_values_videos=video)
        features = loaded.encoder(video.permute(0, 2, 1, 3, 4))  # ours: (B, C, T, H, W)
        torch.testing.assert_close(features, reference.last_hidden_state, rtol=0, atol=1e-4)

        ids = torch.arange(8).repeat(2, 1)  # default masks of transformers: everything is context and target
        prediction = loaded.predictor(features, ids, ids)
        torch.testing.assert_close(prediction, reference.predictor_output.last_hidden_state, rtol=0, atol=1e-4)

        context, target = ids[:, :4], ids[:, 4:]
        partial = model(pixel_values_videos=video, context_mask=[context], target_mask=[target])
        prediction = loaded.predictor(apply_masks(features, [context]), context, target)
        torch.testing.assert_close(prediction, partial.predictor_output.last_hidden_state, rtol=0, atol=1e-4)
        # the mask token in use (index 1) matters: a predictor without it differs
        assert prediction.abs().max() > 0


def test_hf_round_trip_and_transformers_reload(hf_dir, tmp_path):
    directory, model = hf_dir
    jepa_dir = convert(directory, tmp_path / "jepa", to="jepa")
    hf_again = convert(jepa_dir, tmp_path / "hf", to="hf")
    config = json.loads((hf_again / "config.json").read_text())
    assert config["model_type"] == "vjepa2" and config["architectures"] == ["VJEPA2Model"]
    reloaded, info = transformers.VJEPA2Model.from_pretrained(hf_again, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    _assert_state_equal(reloaded.state_dict(), model.state_dict())  # bit-exact through jepa and back
    for field in ("hidden_size", "num_hidden_layers", "num_attention_heads", "crop_size", "pred_hidden_size"):
        assert getattr(reloaded.config, field) == getattr(model.config, field)


def test_jepa_hf_jepa_and_official_round_trips_are_lossless(tiny_models, tmp_path):
    encoder, predictor = tiny_models(0)
    start = save_pretrained(tmp_path / "a", encoder, predictor)
    through_hf = convert(convert(start, tmp_path / "hf", to="hf"), tmp_path / "b", to="jepa")
    through_official = convert(convert(start, tmp_path / "o.pt", to="official"), tmp_path / "c", to="jepa")
    for directory in (through_hf, through_official):
        loaded = load_pretrained(directory)
        _assert_state_equal(loaded.encoder.state_dict(), encoder.state_dict())
        _assert_state_equal(loaded.predictor.state_dict(), predictor.state_dict())
        for field in ("embed_dim", "depth", "num_heads", "mlp_ratio", "img_size", "patch_size", "tubelet_size"):
            assert getattr(loaded.encoder_config, field) == getattr(encoder.config, field)
        assert loaded.predictor_config.num_mask_tokens == 10
    # the hf copy written by us is a valid transformers model with the same numbers
    reloaded = transformers.VJEPA2Model.from_pretrained(tmp_path / "hf").eval()
    video = torch.randn(1, 4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = encoder(video.permute(0, 2, 1, 3, 4))
        theirs = reloaded(pixel_values_videos=video, skip_predictor=True).last_hidden_state
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)


def test_classification_checkpoint_backbone_loads(hf_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    directory, model = hf_dir
    tensors = {f"vjepa2.{k}": v for k, v in load_file(directory / "model.safetensors").items()}
    tensors["pooler.query_tokens"] = torch.zeros(1, 1, 64)
    tensors["classifier.weight"] = torch.zeros(5, 64)
    out = tmp_path / "cls"
    out.mkdir()
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((directory / "config.json").read_text())
    config["architectures"] = ["VJEPA2ForVideoClassification"]
    (out / "config.json").write_text(json.dumps(config))
    loaded = load_pretrained(out)
    assert sorted(loaded.extra) == ["classifier.weight", "pooler.query_tokens"]
    reference = load_pretrained(directory)
    _assert_state_equal(loaded.encoder.state_dict(), reference.encoder.state_dict())
