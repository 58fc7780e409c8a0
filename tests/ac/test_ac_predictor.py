"""AC predictor: block causality, KV cache exactness, RoPE layout, official key layout (strict load)."""

from __future__ import annotations

import torch

from jepa.encoders.rope import apply_rope_3d, rope_split, rotate
from jepa.predictors.action_conditioned import (
    ACAttention,
    ACPredictor,
    ACPredictorConfig,
    ac_predictor_tiny,
    block_causal_mask,
    load_official_ac_predictor,
    vjepa2_ac_vitg,
)
from jepa.predictors.kv_cache import KVCache

HW = 16  # 64 px / 16


def _inputs(batch: int = 2, frames: int = 4, dim: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, frames * HW, dim, generator=g),
        torch.randn(batch, frames, 7, generator=g),
        torch.randn(batch, frames, 7, generator=g),
    )


def test_block_causal_mask_matches_official_definition():
    mask = block_causal_mask(3, 4)  # 3 frames of (2 cond + 2 patches)
    frame = torch.arange(12) // 4
    assert torch.equal(mask, frame[:, None] >= frame[None, :])
    past = block_causal_mask(2, 4, num_past_frames=1)  # rows = frames 1, 2; columns = frames 0, 1, 2
    assert torch.equal(past, mask[4:])


def test_block_causality_later_inputs_do_not_change_earlier_outputs():
    torch.manual_seed(0)
    model = ac_predictor_tiny().eval()
    x, a, s = _inputs()
    out = model(x, a, s)
    x2, a2, s2 = x.clone(), a.clone(), s.clone()
    x2[:, 2 * HW :] += 5.0  # change frames 2, 3 and their actions/states
    a2[:, 2:] -= 3.0
    s2[:, 2:] += 1.0
    out2 = model(x2, a2, s2)
    torch.testing.assert_close(out2[:, : 2 * HW], out[:, : 2 * HW], atol=1e-6, rtol=0)
    assert (out2[:, 2 * HW :] - out[:, 2 * HW :]).abs().max() > 1e-2  # later frames do see the change
    a3 = a.clone()
    a3[:, 1] += 1.0  # the action of frame 1 changes frame 1's output (same-frame attention)
    assert (model(x, a3, s)[:, HW : 2 * HW] - out[:, HW : 2 * HW]).abs().max() > 1e-3


def test_kv_cache_matches_uncached_frame_by_frame_and_in_chunks():
    torch.manual_seed(0)
    model = ac_predictor_tiny(use_extrinsics=True).eval()
    x, a, s = _inputs(frames=5)
    e = torch.randn(2, 5, 6)
    full = model(x, a, s, e)
    cache = KVCache()
    steps = [
        model(x[:, t * HW : (t + 1) * HW], a[:, t : t + 1], s[:, t : t + 1], e[:, t : t + 1], cache=cache)
        for t in range(5)
    ]
    assert cache.num_frames == 5 and cache.keys[0].shape[2] == 5 * (3 + HW)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)
    cache = KVCache()
    first = model(x[:, : 2 * HW], a[:, :2], s[:, :2], e[:, :2], cache=cache)
    rest = model(x[:, 2 * HW :], a[:, 2:], s[:, 2:], e[:, 2:], cache=cache)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=1e-5, rtol=0)


def test_batch1_cache_broadcasts_to_samples():
    torch.manual_seed(0)
    model = ac_predictor_tiny().eval()
    x, a, s = _inputs(batch=1, frames=2)
    cache = KVCache()
    model(x[:, :HW], a[:, :1], s[:, :1], cache=cache)
    a_new = torch.randn(3, 1, 7)
    out = model(x[:, HW:].expand(3, -1, -1), a_new, s[:, 1:].expand(3, -1, -1), cache=cache)
    for i in range(3):
        ref = model(x, torch.cat([a[:, :1], a_new[i : i + 1]], 1), s)[:, HW:]
        torch.testing.assert_close(out[i : i + 1], ref, atol=1e-5, rtol=0)


def test_rope_patches_match_encoder_rope_and_conditioning_is_temporal_only():
    cfg = ACPredictorConfig(encoder_dim=64, embed_dim=64, depth=1, num_heads=2, img_size=64)  # head_dim 32, s = 10
    attn = ACAttention(cfg)
    frames, per_frame = 3, 2 + HW
    q = torch.randn(1, 2, frames, per_frame, 32)
    out = attn._rope(q, t0=0, grid=(4, 4))
    ids = torch.arange(frames * HW)
    ref = apply_rope_3d(q[:, :, :, 2:].flatten(2, 3), ids, (4, 4)).unflatten(2, (frames, HW))
    torch.testing.assert_close(out[:, :, :, 2:], ref)  # patches: encoder 3-D RoPE with ids arange(T·H·W)
    t = torch.arange(frames, dtype=torch.float32)[:, None]
    torch.testing.assert_close(out[..., :2, :10], rotate(q[..., :2, :10], t))  # cond: temporal slot by frame index
    torch.testing.assert_close(out[..., :2, 10:], q[..., :2, 10:])  # everything else unrotated
    shifted = attn._rope(q[:, :, 1:], t0=1, grid=(4, 4))  # cache offset t0 = same positions
    torch.testing.assert_close(shifted, out[:, :, 1:])


def test_official_layout_loads_strictly(tmp_path):
    torch.manual_seed(0)
    model = ac_predictor_tiny(img_size=256).eval()
    keys = set(model.state_dict())
    assert {"extrinsics_encoder.weight", "action_encoder.weight", "state_encoder.weight", "predictor_proj.bias"} <= keys
    assert "predictor_blocks.1.attn.qkv.weight" in keys and "predictor_blocks.1.mlp.fc2.bias" in keys
    official = {
        "encoder": {"module.patch_embed.proj.weight": torch.zeros(1)},
        "predictor": {f"module.{k}": v for k, v in model.state_dict().items()},
        "epoch": 1,
    }
    path = tmp_path / "vjepa2-ac-tiny.pt"
    torch.save(official, path)
    loaded = load_official_ac_predictor(str(path), num_heads=4).eval()
    x = torch.randn(1, 2 * 256, 64)
    a, s = torch.randn(1, 2, 7), torch.randn(1, 2, 7)
    torch.testing.assert_close(loaded(x, a, s), model(x, a, s))
    bad = dict(official["predictor"])
    bad.pop("module.extrinsics_encoder.bias")
    try:
        load_official_ac_predictor({"predictor": bad}, num_heads=4)
    except RuntimeError as err:
        assert "extrinsics_encoder.bias" in str(err)
    else:
        raise AssertionError("a missing key must fail the strict load")


def test_vitg_builder_has_released_shapes():
    with torch.device("meta"):
        model = vjepa2_ac_vitg()
    assert isinstance(model, ACPredictor)
    sd = model.state_dict()
    assert sum(v.numel() for v in sd.values()) / 1e6 == __import__("pytest").approx(305.2, abs=0.1)
    assert sd["predictor_embed.weight"].shape == (1024, 1408)
    assert sd["action_encoder.weight"].shape == (1024, 7) and sd["extrinsics_encoder.weight"].shape == (1024, 6)
    assert sd["predictor_blocks.23.attn.qkv.weight"].shape == (3072, 1024)
    assert sd["predictor_blocks.23.mlp.fc1.weight"].shape == (4096, 1024)
    assert sd["predictor_proj.weight"].shape == (1408, 1024)
    assert "predictor_blocks.24.norm1.weight" not in sd


def _per_slice_rope(x, t0, grid, cfg):
    """The straightforward AC RoPE (one `rotate` call per slice), reference for the fused table form."""
    s, c = rope_split(cfg.head_dim), cfg.num_cond_tokens
    frames, (height, width) = x.shape[2], grid
    t = torch.arange(t0, t0 + frames).to(x.dtype)
    cond, patches = x[..., :c, :], x[..., c:, :]
    cond = torch.cat([rotate(cond[..., :s], t[:, None], cfg.rope_mode), cond[..., s:]], dim=-1)
    rows = (torch.arange(height) * (cfg.grid_size / height)).to(x.dtype).repeat_interleave(width)
    cols = (torch.arange(width) * (cfg.grid_size / width)).to(x.dtype).repeat(height)
    parts = [
        rotate(patches[..., :s], t[:, None].expand(frames, height * width), cfg.rope_mode),
        rotate(patches[..., s : 2 * s], rows[None].expand(frames, -1), cfg.rope_mode),
        rotate(patches[..., 2 * s : 3 * s], cols[None].expand(frames, -1), cfg.rope_mode),
        patches[..., 3 * s :],
    ]
    return torch.cat([cond, torch.cat(parts, dim=-1)], dim=3)


def test_fused_rope_tables_are_bitwise_the_per_slice_rotation():
    torch.manual_seed(0)
    cases = [
        (dict(num_heads=2), (4, 4), torch.float32),  # head_dim 32: s = 10, 2 unrotated channels
        (dict(num_heads=2, rope_mode="interleaved", use_extrinsics=True), (4, 4), torch.float32),
        (dict(embed_dim=56, num_heads=8), (2, 3), torch.float32),  # odd head_dim 7, non-square grid (scaled h, w)
        (dict(num_heads=4), (4, 4), torch.bfloat16),
    ]
    for overrides, grid, dtype in cases:
        cfg = ACPredictorConfig(**{"encoder_dim": 64, "embed_dim": 64, "depth": 1, "img_size": 64, **overrides})
        attn = ACAttention(cfg)
        q = torch.randn(2, cfg.num_heads, 3, cfg.num_cond_tokens + grid[0] * grid[1], cfg.head_dim).to(dtype)
        for t0 in (0, 2):
            assert torch.equal(attn._rope(q, t0, grid), _per_slice_rope(q, t0, grid, cfg)), (overrides, dtype, t0)


def test_fused_rope_forward_matches_per_slice_forward_exactly(monkeypatch):
    """The whole predictor (and its gradients) is unchanged bitwise by the fused RoPE tables."""
    torch.manual_seed(0)
    model = ac_predictor_tiny(use_extrinsics=True)
    x, a, s = _inputs(frames=3)
    e = torch.randn(2, 3, 6)
    x.requires_grad_(True)
    out = model(x, a, s, e)
    (grad,) = torch.autograd.grad(out.square().sum(), x)

    def per_slice_forward(self, x, grid, t0=0, cache=None, layer=0, rope=None, update_cache=True):
        batch, num_tokens, dim = x.shape
        per_frame = self.num_cond + grid[0] * grid[1]
        frames = num_tokens // per_frame
        qkv = self.qkv(x).view(batch, frames, per_frame, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 4, 1, 2, 5).unbind(0)
        q = _per_slice_rope(q, t0, grid, self.config).flatten(2, 3)
        k = _per_slice_rope(k, t0, grid, self.config).flatten(2, 3)
        mask = block_causal_mask(frames, per_frame)
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v.flatten(2, 3), attn_mask=mask)
        return self.proj(o.transpose(1, 2).reshape(batch, num_tokens, dim))

    monkeypatch.setattr(ACAttention, "forward", per_slice_forward)
    ref = model(x, a, s, e)
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), x)
    assert torch.equal(out, ref) and torch.equal(grad, ref_grad)


def test_last_step_without_cache_update_matches_and_leaves_the_cache_unchanged():
    torch.manual_seed(0)
    model = ac_predictor_tiny().eval()
    x, a, s = _inputs(batch=1, frames=3)
    full = model(x, a, s)
    cache = KVCache()
    model(x[:, : 2 * HW], a[:, :2], s[:, :2], cache=cache)
    keys = [k.clone() for k in cache.keys]
    last = model(x[:, 2 * HW :], a[:, 2:], s[:, 2:], cache=cache, update_cache=False)
    torch.testing.assert_close(last, full[:, 2 * HW :], atol=1e-5, rtol=0)
    assert cache.num_frames == 2 and all(torch.equal(k, c) for k, c in zip(keys, cache.keys, strict=True))
    empty = KVCache()  # first and only step (horizon 1): nothing stored, same as the uncached forward
    assert torch.equal(
        model(x[:, :HW], a[:, :1], s[:, :1], cache=empty, update_cache=False), model(x[:, :HW], a[:, :1], s[:, :1])
    )
    assert empty.num_frames == 0 and not empty.keys
