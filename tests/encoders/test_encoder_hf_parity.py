"""Parity of ``VideoViT`` + ``MaskPredictor`` with transformers ``VJEPA2Model`` (fp32, max abs diff <= 1e-4).

The transformers weights are converted to the official layout by :func:`hf_to_official_local`, written here from
spec checkpoints.md §3.1/§3.2 (and cross-checked against ``jepa.hub.layouts.hf_to_official`` when it exists).
"""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import load_file
from transformers import VJEPA2Config, VJEPA2Model

from jepa.encoders import EncoderConfig, VideoViT, apply_masks
from jepa.predictors import MaskPredictor, PredictorConfig

ATOL = 1e-4


def hf_to_official_local(state_dict: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """transformers ``VJEPA2Model`` keys → (official encoder keys, official predictor keys)."""
    encoder: dict[str, torch.Tensor] = {}
    predictor: dict[str, torch.Tensor] = {}
    fused: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        if m := re.fullmatch(r"(encoder|predictor)\.layer\.(\d+)\.attention\.(query|key|value)\.(weight|bias)", key):
            part, index, which, kind = m.groups()
            prefix = "blocks" if part == "encoder" else "predictor_blocks"
            fused.setdefault((f"{prefix}.{index}.attn.qkv.{kind}", part), {})[which] = value
            continue
        if m := re.fullmatch(r"encoder\.layer\.(\d+)\.(.*)", key):
            encoder[f"blocks.{m.group(1)}.{m.group(2).replace('attention.proj', 'attn.proj')}"] = value
        elif m := re.fullmatch(r"predictor\.layer\.(\d+)\.(.*)", key):
            predictor[f"predictor_blocks.{m.group(1)}.{m.group(2).replace('attention.proj', 'attn.proj')}"] = value
        elif key.startswith("encoder.embeddings.patch_embeddings.proj."):
            encoder["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("encoder.layernorm."):
            encoder["norm." + key.rsplit(".", 1)[1]] = value
        elif key == "predictor.embeddings.mask_tokens":
            for i, token in enumerate(value):
                predictor[f"mask_tokens.{i}"] = token  # (1, 1, Dp)
        elif key.startswith("predictor.embeddings.predictor_embeddings."):
            predictor["predictor_embed." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("predictor.layernorm."):
            predictor["predictor_norm." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("predictor.proj."):
            predictor["predictor_proj." + key.rsplit(".", 1)[1]] = value
        else:
            raise KeyError(f"unmapped transformers key {key}")
    for (key, part), qkv in fused.items():
        target = encoder if part == "encoder" else predictor
        target[key] = torch.cat([qkv["query"], qkv["key"], qkv["value"]], dim=0)  # rows [q | k | v]
    return encoder, predictor


def hf_config(hidden: int, heads: int, layers: int, crop: int, frames: int, **kw) -> VJEPA2Config:
    return VJEPA2Config(
        hidden_size=hidden,
        num_attention_heads=heads,
        num_hidden_layers=layers,
        crop_size=crop,
        frames_per_clip=frames,
        **kw,
    )


def jepa_models(cfg: VJEPA2Config, encoder_sd: dict, predictor_sd: dict) -> tuple[VideoViT, MaskPredictor]:
    enc_cfg = EncoderConfig(
        embed_dim=cfg.hidden_size,
        depth=cfg.num_hidden_layers,
        num_heads=cfg.num_attention_heads,
        mlp_ratio=cfg.mlp_ratio,
        img_size=cfg.crop_size,
        num_frames=cfg.frames_per_clip,
    )
    pred_cfg = PredictorConfig(
        encoder_dim=cfg.hidden_size,
        embed_dim=cfg.pred_hidden_size,
        depth=cfg.pred_num_hidden_layers,
        num_heads=cfg.pred_num_attention_heads,
        mlp_ratio=cfg.pred_mlp_ratio,
        num_mask_tokens=cfg.pred_num_mask_tokens,
        img_size=cfg.crop_size,
        num_frames=cfg.frames_per_clip,
    )
    with torch.device("meta"):
        encoder, predictor = VideoViT(enc_cfg), MaskPredictor(pred_cfg)
    encoder.load_state_dict(encoder_sd, strict=True, assign=True)
    predictor.load_state_dict(predictor_sd, strict=True, assign=True)
    return encoder.eval(), predictor.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max())


@pytest.fixture(scope="module", params=[(128, 2), (160, 2)], ids=["hd64", "hd80"])
def tiny_pair(request, tmp_path_factory):
    """A random tiny transformers model saved with save_pretrained, and the jepa models loaded from its file."""
    hidden, heads = request.param
    torch.manual_seed(0)
    cfg = hf_config(
        hidden, heads, 2, crop=64, frames=4, pred_hidden_size=64, pred_num_attention_heads=2, pred_num_hidden_layers=2
    )
    hf = VJEPA2Model(cfg).eval()
    with torch.no_grad():  # transformers zero-initialises biases and mask tokens: randomise everything
        for name, param in hf.named_parameters():
            param.copy_(
                torch.randn_like(param) * (0.1 if "norm" not in name else 0.3) + ("norm" in name and "weight" in name)
            )
    directory = tmp_path_factory.mktemp(f"hf_tiny_{hidden}")
    hf.save_pretrained(directory)
    encoder_sd, predictor_sd = hf_to_official_local(load_file(directory / "model.safetensors"))
    encoder, predictor = jepa_models(cfg, encoder_sd, predictor_sd)
    return hf, encoder, predictor, cfg


def video_pair(batch: int = 2, frames: int = 4, size: int = 64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The same clip in official (B, C, T, H, W) and transformers (B, T, C, H, W) layouts."""
    torch.manual_seed(seed)
    video = torch.randn(batch, 3, frames, size, size)
    return video, video.permute(0, 2, 1, 3, 4)


@torch.no_grad()
def test_encoder_and_intermediate_layers_match(tiny_pair) -> None:
    hf, encoder, _, _ = tiny_pair
    video, video_hf = video_pair()
    out_hf = hf(video_hf, skip_predictor=True, output_hidden_states=True)
    assert max_diff(encoder(video), out_hf.last_hidden_state) <= ATOL
    layers = encoder(video, out_layers=[0, 1])
    for i, feats in zip([0, 1], layers, strict=True):
        assert max_diff(feats, hf.encoder.layernorm(out_hf.hidden_states[i + 1])) <= ATOL


@torch.no_grad()
def test_predictor_full_masks_match(tiny_pair) -> None:
    hf, encoder, predictor, _ = tiny_pair
    video, video_hf = video_pair()
    out_hf = hf(video_hf)  # default masks: arange(N) for context and target
    features = encoder(video)
    ids = torch.arange(features.shape[1]).expand(video.shape[0], -1)
    prediction = predictor(features, ids, ids)
    assert max_diff(prediction, out_hf.predictor_output.last_hidden_state) <= ATOL


@torch.no_grad()
def test_predictor_partial_and_random_masks_match(tiny_pair) -> None:
    hf, encoder, predictor, _ = tiny_pair
    video, video_hf = video_pair()
    features = encoder(video)
    batch, num_tokens = features.shape[:2]
    k = num_tokens // 4
    ids = torch.arange(num_tokens).expand(batch, -1)
    torch.manual_seed(5)
    perms = torch.stack([torch.randperm(num_tokens) for _ in range(batch)])
    cases = [
        (ids[:, :k], ids[:, k : 2 * k]),  # window: context ids[0:K], target ids[K:2K]
        (perms[:, :k], perms[:, k : 3 * k]),  # unsorted, per-sample different ids
    ]
    for ctx, tgt in cases:
        out_hf = hf(video_hf, context_mask=[ctx], target_mask=[tgt])
        prediction = predictor(apply_masks(features, [ctx]), [ctx], [tgt])
        assert max_diff(prediction, out_hf.predictor_output.last_hidden_state) <= ATOL


@torch.no_grad()
def test_masked_encoder_matches_blocks_on_kept_tokens(tiny_pair) -> None:
    """Masked encoding = transformers layers run on the kept tokens only, with their ids as RoPE positions."""
    hf, encoder, _, _ = tiny_pair
    video, video_hf = video_pair()
    torch.manual_seed(7)
    num_tokens = 2 * 4 * 4
    keep_a = torch.stack([torch.randperm(num_tokens)[:10] for _ in range(2)])
    keep_b = torch.stack([torch.randperm(num_tokens)[:10] for _ in range(2)])
    ours = encoder(video, masks=[keep_a, keep_b])  # (2·B, K, D)
    tokens = apply_masks(hf.encoder.embeddings(video_hf), [keep_a, keep_b])
    ids = torch.cat([keep_a, keep_b], dim=0)
    for layer in hf.encoder.layer:
        tokens = layer(tokens, ids)[0]
    reference = hf.encoder.layernorm(tokens)
    assert ours.shape == (4, 10, encoder.embed_dim)
    assert max_diff(ours, reference) <= ATOL
    # and it is NOT a gather of the full encoding (attention sees fewer tokens)
    assert max_diff(ours, apply_masks(encoder(video), [keep_a, keep_b])) > 1e-3


def test_hub_layout_conversion_agrees_with_local_mapping(tiny_pair) -> None:
    layouts = pytest.importorskip("jepa.hub.layouts")
    hf, _, _, _ = tiny_pair
    hf_sd = hf.state_dict()
    encoder_sd, predictor_sd = hf_to_official_local(hf_sd)
    converted = layouts.hf_to_official(hf_sd)
    assert set(converted["encoder"]) == set(encoder_sd)
    assert set(converted["predictor"]) == set(predictor_sd)
    for key, value in encoder_sd.items():
        assert torch.equal(converted["encoder"][key], value), key
    for key, value in predictor_sd.items():
        assert torch.equal(converted["predictor"][key], value), key


def _fill_deterministic(model: torch.nn.Module, seed: int) -> None:
    """Cheap deterministic random weights for a large model: each tensor is a shifted window of one random pool."""
    largest = max(p.numel() for p in model.parameters())
    pool = torch.randn(largest + 100_003, generator=torch.Generator().manual_seed(seed))
    weights, norms = pool * 0.02, pool * 0.1 + 1.0
    with torch.no_grad():
        for index, (name, param) in enumerate(model.named_parameters()):
            start = (index * 7919) % 100_003
            source = norms if "norm" in name and name.endswith("weight") else weights
            param.view(-1).copy_(source[start : start + param.numel()])


@torch.no_grad()
def test_vit_large_preset_matches_transformers() -> None:
    """Released ViT-L architecture (1024/24/16) on a tiny clip: encoder and predictor (partial masks)."""
    cfg = hf_config(1024, 16, 24, crop=64, frames=4)
    with torch.device("meta"):
        hf = VJEPA2Model(cfg)
    hf.to_empty(device="cpu")
    _fill_deterministic(hf, seed=0)
    hf.eval()
    encoder_sd, predictor_sd = hf_to_official_local(hf.state_dict())
    encoder, predictor = jepa_models(cfg, encoder_sd, predictor_sd)
    assert len(encoder_sd) == 292  # spec encoder.md §9
    assert sum(p.numel() for p in encoder.parameters()) == 303_885_312

    video, video_hf = video_pair(batch=1)
    ctx, tgt = torch.arange(8)[None], torch.arange(8, 16)[None]
    out_hf = hf(video_hf, context_mask=[ctx], target_mask=[tgt])
    features = encoder(video)
    assert max_diff(features, out_hf.last_hidden_state) <= ATOL
    prediction = predictor(apply_masks(features, [ctx]), ctx, tgt)
    assert max_diff(prediction, out_hf.predictor_output.last_hidden_state) <= ATOL
