"""Pure state-dict / config layout functions (no files)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from jepa.encoders import EncoderConfig
from jepa.hub import layouts
from jepa.predictors import PredictorConfig


def test_strip_prefixes_removes_every_occurrence():
    sd = {"module.backbone.blocks.0.norm1.weight": torch.ones(1), "module.module.norm.bias": torch.zeros(1)}
    assert list(layouts.strip_prefixes(sd)) == ["blocks.0.norm1.weight", "norm.bias"]
    with pytest.raises(ValueError, match="keys collide after removing .*'norm.bias'"):
        layouts.strip_prefixes({"module.norm.bias": torch.zeros(1), "norm.bias": torch.zeros(1)})


def test_split_and_merge_fused_keep_row_order():
    qkv = torch.arange(12.0).reshape(6, 2)  # D = 2: rows [q q | k k | v v]
    q, k, v = layouts.split_fused(qkv, 3)
    assert torch.equal(q, qkv[0:2]) and torch.equal(k, qkv[2:4]) and torch.equal(v, qkv[4:6])
    assert q.data_ptr() != qkv.data_ptr()  # copies: safetensors can write them
    assert torch.equal(layouts.merge_fused([q, k, v]), qkv)
    with pytest.raises(ValueError, match=r"shape \(5, 2\) is not divisible by 3"):
        layouts.split_fused(torch.zeros(5, 2), 3)
    with pytest.raises(ValueError, match="equal shapes"):
        layouts.merge_fused([torch.zeros(2, 2), torch.zeros(3, 2)])


def test_official_hf_mapping_round_trip(tiny_models):
    encoder, predictor = tiny_models(0)
    enc_sd = dict(encoder.state_dict(), pos_embed=torch.zeros(1, 8, 192))
    pred_sd = dict(predictor.state_dict(), predictor_pos_embed=torch.zeros(1, 8, 384))
    hf = layouts.official_to_hf(enc_sd, pred_sd)
    assert "encoder.layer.1.attention.value.bias" in hf and "encoder.layernorm.weight" in hf
    assert hf["predictor.embeddings.mask_tokens"].shape == (10, 1, 1, 384)
    assert torch.equal(hf["predictor.embeddings.mask_tokens"][7], predictor.mask_tokens[7].detach())
    qkv = encoder.blocks[0].attn.qkv.weight.detach()
    assert torch.equal(hf["encoder.layer.0.attention.key.weight"], qkv[192:384])
    assert not any("pos_embed" in key for key in hf)
    mixed = layouts.official_to_hf({**encoder.state_dict(), **predictor.state_dict()})  # one flat dict
    assert sorted(mixed) == sorted(hf) and all(torch.equal(mixed[k], hf[k]) for k in hf)

    back = layouts.hf_to_official(hf)
    assert back["extra"] == {}
    for mine, original in ((back["encoder"], encoder.state_dict()), (back["predictor"], predictor.state_dict())):
        assert sorted(mine) == sorted(original)
        for key in original:
            assert torch.equal(mine[key], original[key]), key

    classification = {f"vjepa2.{k}": v for k, v in hf.items()} | {"classifier.bias": torch.zeros(3)}
    parts = layouts.hf_to_official(classification)
    assert list(parts["extra"]) == ["classifier.bias"] and sorted(parts["encoder"]) == sorted(back["encoder"])
    assert layouts.hf_to_official({k: v for k, v in hf.items() if k.startswith("encoder.")})["predictor"] is None


def test_unknown_and_incomplete_keys_are_reported():
    with pytest.raises(KeyError, match="no transformers equivalent: \\['blocks.0.attn.q_norm.weight'\\]"):
        layouts.official_encoder_to_hf({"blocks.0.attn.q_norm.weight": torch.zeros(4)})
    with pytest.raises(KeyError, match="mask_tokens indices are not 0..n-1"):
        layouts.official_predictor_to_hf({"mask_tokens.0": torch.zeros(1, 1, 4), "mask_tokens.2": torch.zeros(1, 1, 4)})
    parts = layouts.hf_to_official(
        {
            "encoder.layer.0.attention.query.weight": torch.zeros(2, 2),
            "encoder.layer.0.attention.key.weight": torch.zeros(2, 2),
        }
    )
    # no merged qkv: the pieces stay under their transformers names for the strict loader to report
    assert sorted(parts["encoder"]) == ["layer.0.attention.key.weight", "layer.0.attention.query.weight"]


def test_detect_layout(tiny_models):
    encoder, predictor = tiny_models(0)
    official = {f"module.backbone.{k}": v for k, v in encoder.state_dict().items()}
    assert layouts.detect_layout({"target_encoder": official, "epoch": 3}) == "official"
    assert layouts.detect_layout(official) == "official"
    assert layouts.detect_layout(predictor.state_dict()) == "official"
    hf = layouts.official_to_hf(encoder.state_dict(), predictor.state_dict())
    assert layouts.detect_layout(hf) == "hf"
    assert layouts.detect_layout({f"vjepa2.{k}": v for k, v in hf.items()}) == "hf"
    assert layouts.detect_layout(layouts.to_jepa_state_dict(encoder.state_dict(), None)) == "jepa"
    assert layouts.detect_layout({"format": "jepa"}) == "jepa"
    assert layouts.detect_layout({"model_type": "vjepa2"}) == "hf"
    with pytest.raises(ValueError, match=r"not a V-JEPA 2 checkpoint .*'fc.weight'"):
        layouts.detect_layout({"fc.weight": torch.zeros(1)})


def test_jepa_state_dict_split():
    sd = {"encoder.norm.weight": torch.ones(2), "predictor.predictor_norm.bias": torch.zeros(2)}
    parts = layouts.from_jepa_state_dict(sd)
    assert list(parts["encoder"]) == ["norm.weight"] and list(parts["predictor"]) == ["predictor_norm.bias"]
    assert layouts.from_jepa_state_dict({"encoder.norm.weight": torch.ones(2)})["predictor"] is None
    with pytest.raises(KeyError, match="outside 'encoder.' / 'predictor.': \\['head.bias'\\]"):
        layouts.from_jepa_state_dict({"head.bias": torch.zeros(1)})


def test_config_conversions():
    encoder = EncoderConfig(embed_dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11, img_size=384, num_frames=64)
    predictor = PredictorConfig(encoder_dim=1408, img_size=384, num_frames=64)
    hf = json.loads(json.dumps(layouts.configs_to_hf_config(encoder, predictor)))  # through JSON, like config.json
    assert hf["model_type"] == "vjepa2" and hf["architectures"] == ["VJEPA2Model"]
    assert (hf["hidden_size"], hf["num_attention_heads"], hf["crop_size"]) == (1408, 22, 384)
    assert layouts.hf_config_to_configs(hf) == (encoder, predictor)  # mlp_ratio 48/11 survives JSON exactly

    with pytest.raises(ValueError, match="encoder.rope_mode='interleaved'"):
        layouts.configs_to_hf_config(dataclasses.replace(encoder, rope_mode="interleaved"), predictor)
    with pytest.raises(ValueError, match="predictor.img_size=256 != encoder.img_size=384"):
        layouts.configs_to_hf_config(encoder, dataclasses.replace(predictor, img_size=256))

    jepa_cfg = json.loads(json.dumps(layouts.jepa_config(encoder, None)))
    assert layouts.parse_jepa_config(jepa_cfg) == (encoder, None)
    with pytest.raises(ValueError, match="format_version 2 is not supported"):
        layouts.parse_jepa_config({**jepa_cfg, "format_version": 2})
    # transformers defaults fill missing fields (spec checkpoints.md §2.1)
    default_encoder, default_predictor = layouts.hf_config_to_configs({"model_type": "vjepa2"})
    assert (default_encoder.embed_dim, default_encoder.depth, default_encoder.num_heads) == (1024, 24, 16)
    assert (default_predictor.embed_dim, default_predictor.depth, default_predictor.num_mask_tokens) == (384, 12, 10)
