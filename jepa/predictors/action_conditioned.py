"""V-JEPA 2-AC action-conditioned predictor (spec: ac_planning.md §1, checkpoints.md §1.3).

A block-causal transformer over frames. Per frame ``t`` the token sequence is ``[a_t, s_t, (e_t), p_(t,0) …
p_(t,HW−1)]``: the embedded action taken after frame ``t``, the embedded 7-D state, optional extrinsics, and the
embedded encoder patch features. Patch tokens get 3-D RoPE (ids ``arange(T·H·W)``, conditioning tokens excluded),
conditioning tokens get temporal-only RoPE on the first ``s`` channels of each head. A frame attends to itself and
earlier frames only, so the outputs at frame ``t`` (the prediction of frame ``t + 1``) never depend on later inputs
and keys/values can be cached across autoregressive steps (:class:`~jepa.predictors.kv_cache.KVCache`).

Module names reproduce the official state dict, so ``vjepa2-ac-vitg.pt``'s ``predictor`` loads strictly after
prefix stripping (:func:`load_official_ac_predictor`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from jepa.encoders.config import TransformerConfigMixin
from jepa.encoders.init import init_vit_weights
from jepa.encoders.layers import MLP
from jepa.encoders.rope import rope_split
from jepa.predictors.kv_cache import KVCache

STATE_DIM = 7  # xyz, Euler xyz, gripper (DROID convention)
EXTRINSICS_DIM = 6


@dataclass
class ACPredictorConfig(TransformerConfigMixin):
    """Numbers that define an AC predictor.

    Attributes:
        encoder_dim: width of the frozen encoder's features (1408 for ViT-g).
        embed_dim / depth / num_heads / mlp_ratio: transformer size (1024 / 24 / 16 / 4 for the release).
        action_dim / state_dim / extrinsics_dim: widths of the conditioning inputs (7 / 7 / 6).
        img_size / patch_size: construction crop and patch; the RoPE grid is ``img_size // patch_size``.
        use_extrinsics: insert an extrinsics token per frame (false in every official config).
        qkv_bias / norm_eps / rope_mode / rope_theta: as for the encoder.
        use_activation_checkpointing: checkpoint every block while training.
    """

    encoder_dim: int = 1408
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    action_dim: int = STATE_DIM
    state_dim: int = STATE_DIM
    extrinsics_dim: int = EXTRINSICS_DIM
    img_size: int = 256
    patch_size: int = 16
    use_extrinsics: bool = False
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    rope_mode: str = "official"
    rope_theta: float = 10000.0
    use_activation_checkpointing: bool = False

    def __post_init__(self) -> None:
        self.check_transformer_fields()
        if self.img_size % self.patch_size:
            raise ValueError(f"ACPredictorConfig: img_size={self.img_size} not a multiple of {self.patch_size}")

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_cond_tokens(self) -> int:
        return 3 if self.use_extrinsics else 2


def block_causal_mask(
    num_query_frames: int,
    tokens_per_frame: int,
    num_past_frames: int = 0,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Boolean block-causal mask (True = may attend), built for the frames at hand only.

    Args:
        num_query_frames: frames whose tokens are queries (the new frames).
        tokens_per_frame: ``c + H·W``.
        num_past_frames: cached frames before them (keys only; every query may attend to all of them).
        device: where to build it.

    Returns:
        ``(F·n, (P + F)·n)`` with ``F = num_query_frames``, ``P = num_past_frames``, ``n = tokens_per_frame``:
        entry ``[i, j]`` is True iff frame(query i) ≥ frame(key j).
    """
    query_frame = torch.arange(num_query_frames, device=device).repeat_interleave(tokens_per_frame) + num_past_frames
    key_frame = torch.arange(num_past_frames + num_query_frames, device=device).repeat_interleave(tokens_per_frame)
    return query_frame[:, None] >= key_frame[None, :]


def ac_rope_tables(
    num_frames: int,
    t0: int,
    grid: tuple[int, int],
    config: ACPredictorConfig,
    dtype: torch.dtype,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and signed-sine tables of the AC RoPE (spec §1.3) for frames ``t0 … t0 + F − 1``.

    Rotating with them is ``x·cos + swap(x)·sin`` where ``swap`` exchanges the channels of each adjacent pair: the
    same per-element arithmetic as :func:`jepa.encoders.rope.rotate` on every rotated slice (``(−x₁)·sin =
    x₁·(−sin)`` exactly), and ``x·1 + swap(x)·0 = x`` on channels that are not rotated, so the result is bitwise the
    per-slice rotation. The angles are computed with ``rotate``'s op sequence in ``dtype`` (official numerics).

    Returns:
        ``(cos, sin)``, each ``(F, c + H·W, head_dim)`` in ``dtype``: per frame ``[cond tokens, patches]``.
    """
    head_dim, s, c = config.head_dim, rope_split(config.head_dim), config.num_cond_tokens
    height, width = grid
    half = s // 2
    omega = torch.arange(half, dtype=dtype, device=device) / (s / 2.0)
    omega = 1.0 / config.rope_theta**omega  # (s/2,)
    t = torch.arange(t0, t0 + num_frames, device=device).to(dtype)  # (F,) frame positions
    rows = (torch.arange(height, device=device) * (config.grid_size / height)).to(dtype)
    cols = (torch.arange(width, device=device) * (config.grid_size / width)).to(dtype)
    patches = height * width
    zero_cond = torch.zeros(num_frames, c, dtype=dtype, device=device)
    # positions per rotated slot (F, c + HW): conditioning tokens only rotate the temporal slot (0 elsewhere = identity)
    pos_t = t[:, None].expand(num_frames, c + patches)
    pos_h = torch.cat([zero_cond, rows.repeat_interleave(width)[None].expand(num_frames, -1)], dim=1)
    pos_w = torch.cat([zero_cond, cols.repeat(height)[None].expand(num_frames, -1)], dim=1)
    slots = []
    for pos in (pos_t, pos_h, pos_w):
        freq = pos.unsqueeze(-1) * omega  # (F, n, s/2)
        slots.append(torch.cat([freq, freq], -1) if config.rope_mode == "official" else freq.repeat_interleave(2, -1))
    slots.append(torch.zeros(num_frames, c + patches, head_dim - 3 * s, dtype=dtype, device=device))  # unrotated
    freq = torch.cat(slots, dim=-1)  # (F, n, hd)
    sign = torch.tensor([-1.0, 1.0], dtype=dtype, device=device).repeat(head_dim // 2)  # partner = (−x₁, x₀)
    sign = torch.cat([sign, sign.new_ones(head_dim % 2)])  # (hd,); an odd last channel is never rotated
    return freq.cos(), freq.sin() * sign


def _swap_pairs(x: torch.Tensor) -> torch.Tensor:
    """``(..., hd)`` → channels of each adjacent pair exchanged: ``(x₁, x₀, x₃, x₂, …)`` (odd last channel kept)."""
    if x.shape[-1] % 2:
        return torch.cat([_swap_pairs(x[..., :-1]), x[..., -1:]], dim=-1)
    pairs = x.unflatten(-1, (-1, 2))  # (..., hd/2, 2)
    return torch.stack((pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


class ACAttention(nn.Module):
    """Fused-qkv attention with AC RoPE (spec §1.3) and an optional KV cache; keys ``qkv`` / ``proj`` as official."""

    def __init__(self, config: ACPredictorConfig) -> None:
        super().__init__()
        self.config = config
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.num_cond = config.num_cond_tokens
        self.qkv = nn.Linear(config.embed_dim, 3 * config.embed_dim, bias=config.qkv_bias)
        self.proj = nn.Linear(config.embed_dim, config.embed_dim)

    def rope_tables(
        self, num_frames: int, t0: int, grid: tuple[int, int], dtype: torch.dtype, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`ac_rope_tables` for this layer's configuration: ``(cos, sin)``, each ``(F, c + H·W, hd)``."""
        return ac_rope_tables(num_frames, t0, grid, self.config, dtype, device)

    def _rope(self, x: torch.Tensor, t0: int, grid: tuple[int, int]) -> torch.Tensor:
        """Rotate q or k ``(B, heads, F, c + H·W, hd)`` of frames ``t0 … t0 + F − 1``."""
        cos, sin = self.rope_tables(x.shape[2], t0, grid, x.dtype, x.device)  # (F, n, hd)
        return x * cos + _swap_pairs(x) * sin

    def forward(
        self,
        x: torch.Tensor,
        grid: tuple[int, int],
        t0: int = 0,
        cache: KVCache | None = None,
        layer: int = 0,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        update_cache: bool = True,
    ) -> torch.Tensor:
        """Attend over ``F`` new frames (and cached earlier frames).

        Args:
            x: ``(B, F·(c + H·W), D)`` tokens of frames ``t0 … t0 + F − 1``, per frame ``[cond, patches]``.
            grid: ``(H, W)`` patch grid of one frame.
            t0: temporal position of the first new frame (= frames already in ``cache``).
            cache: optional cache; the new keys/values are appended to it.
            layer: block index inside ``cache``.
            rope: optional precomputed :meth:`rope_tables` for these frames (shared by all blocks of a forward).
            update_cache: append the new keys/values to ``cache`` (False: attend to it without storing).

        Returns:
            ``(B, F·(c + H·W), D)``.
        """
        batch, num_tokens, dim = x.shape
        per_frame = self.num_cond + grid[0] * grid[1]
        num_frames = num_tokens // per_frame
        qkv = self.qkv(x).view(batch, num_frames, per_frame, 3, self.num_heads, self.head_dim)
        if rope is None or rope[0].dtype != qkv.dtype:  # tables in q/k dtype (official numerics)
            rope = self.rope_tables(num_frames, t0, grid, qkv.dtype, x.device)
        cos, sin = rope
        cos, sin = cos[:, :, None, None], sin[:, :, None, None]  # (F, n, 1, 1, hd): broadcast over q/k and heads
        qk = qkv[:, :, :, :2]  # (B, F, n, 2, heads, hd): q and k rotated together
        qk = qk * cos + _swap_pairs(qk) * sin
        q, k = qk.permute(3, 0, 4, 1, 2, 5).flatten(3, 4).unbind(0)  # each (B, heads, F·n, hd), views
        v = qkv[:, :, :, 2].permute(0, 3, 1, 2, 4).flatten(2, 3)  # (B, heads, F·n, hd)
        if cache is not None:
            k, v = cache.extend(layer, k, v) if update_cache else cache.peek(layer, k, v)  # (B, heads, (t0+F)·n, hd)
        # one new frame attends to everything cached and itself: no mask needed
        past = k.shape[2] // per_frame - num_frames
        mask = None if num_frames == 1 else block_causal_mask(num_frames, per_frame, past, x.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, N_new, hd)
        return self.proj(out.transpose(1, 2).reshape(batch, num_tokens, dim))


class ACBlock(nn.Module):
    """Pre-norm block ``x + attn(norm1(x))``, ``x + mlp(norm2(x))`` with :class:`ACAttention`."""

    def __init__(self, config: ACPredictorConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.attn = ACAttention(config)
        self.norm2 = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.mlp = MLP(config.embed_dim, config.mlp_hidden_dim)

    def forward(
        self,
        x: torch.Tensor,
        grid: tuple[int, int],
        t0: int = 0,
        cache: KVCache | None = None,
        layer: int = 0,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        update_cache: bool = True,
    ) -> torch.Tensor:
        """``(B, N, D) → (B, N, D)``; arguments as in :meth:`ACAttention.forward`."""
        x = x + self.attn(self.norm1(x), grid, t0, cache, layer, rope, update_cache)
        return x + self.mlp(self.norm2(x))


class ACPredictor(nn.Module):
    """The V-JEPA 2-AC predictor (official ``VisionTransformerPredictorAC``).

    Call ``predictor(features, actions, states, extrinsics=None, cache=None)``:

    * ``features``: ``(B, F·H·W, encoder_dim)`` normalised encoder features of ``F`` frames (``H = W = grid`` unless
      ``grid`` is given).
    * ``actions``, ``states``: ``(B, F, 7)``; ``extrinsics``: ``(B, F, 6)`` when ``use_extrinsics``.
    * ``cache``: optional :class:`KVCache`; the frames are then placed after the ``cache.num_frames`` cached ones
      and the cache is extended in place (``update_cache=False``: attended to but left unchanged, for a last step
      whose keys/values are never needed again). Batch-1 caches broadcast to the new batch.
    * returns ``(B, F·H·W, encoder_dim)``: the tokens of frame slot ``t`` predict frame ``t + 1`` (not normalised).
    """

    def __init__(self, config: ACPredictorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else ACPredictorConfig()
        self.predictor_embed = nn.Linear(config.encoder_dim, config.embed_dim)
        self.action_encoder = nn.Linear(config.action_dim, config.embed_dim)
        self.state_encoder = nn.Linear(config.state_dim, config.embed_dim)
        self.extrinsics_encoder = nn.Linear(config.extrinsics_dim, config.embed_dim)  # always built (official keys)
        self.predictor_blocks = nn.ModuleList(ACBlock(config) for _ in range(config.depth))
        self.predictor_norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.predictor_proj = nn.Linear(config.embed_dim, config.encoder_dim)
        self.grad_checkpointing = config.use_activation_checkpointing
        init_vit_weights(self, self.predictor_blocks)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint every block (non-reentrant) when training with gradients enabled and no cache."""
        self.grad_checkpointing = enable

    def forward(
        self,
        features: torch.Tensor,
        actions: torch.Tensor,
        states: torch.Tensor,
        extrinsics: torch.Tensor | None = None,
        cache: KVCache | None = None,
        grid: tuple[int, int] | None = None,
        update_cache: bool = True,
    ) -> torch.Tensor:
        cfg = self.config
        grid = grid or (cfg.grid_size, cfg.grid_size)
        batch, num_tokens, width = features.shape
        patches = grid[0] * grid[1]
        if width != cfg.encoder_dim or num_tokens % patches:
            raise ValueError(
                f"ACPredictor: features must be (B, F·{patches}, {cfg.encoder_dim}), got {tuple(features.shape)}"
            )
        num_frames = num_tokens // patches
        for name, value, dim in (("actions", actions, cfg.action_dim), ("states", states, cfg.state_dim)):
            if value.shape != (batch, num_frames, dim):
                raise ValueError(
                    f"ACPredictor: {name} must be ({batch}, {num_frames}, {dim}), got {tuple(value.shape)}"
                )
        x = self.predictor_embed(features).view(batch, num_frames, patches, cfg.embed_dim)  # (B, F, HW, D)
        cond = [self.action_encoder(actions), self.state_encoder(states)]  # each (B, F, D)
        if cfg.use_extrinsics:
            if extrinsics is None or extrinsics.shape != (batch, num_frames, cfg.extrinsics_dim):
                got = None if extrinsics is None else tuple(extrinsics.shape)
                raise ValueError(f"ACPredictor: use_extrinsics needs extrinsics ({batch}, {num_frames}, 6), got {got}")
            cond.append(self.extrinsics_encoder(extrinsics))
        x = torch.cat([torch.stack(cond, dim=2), x], dim=2).flatten(1, 2)  # (B, F·(c + HW), D)
        t0 = cache.num_frames if cache is not None else 0
        rope = ac_rope_tables(num_frames, t0, grid, cfg, x.dtype, x.device)  # once for all blocks
        for layer, block in enumerate(self.predictor_blocks):
            if self.grad_checkpointing and cache is None and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, grid, t0, None, layer, rope, use_reentrant=False)
            else:
                x = block(x, grid, t0, cache, layer, rope, update_cache)
        if cache is not None and update_cache:
            cache.num_frames += num_frames
        x = x.view(batch, num_frames, cfg.num_cond_tokens + patches, cfg.embed_dim)[:, :, cfg.num_cond_tokens :]
        x = self.predictor_norm(x.flatten(1, 2))  # (B, F·HW, D)
        return self.predictor_proj(x)  # (B, F·HW, encoder_dim)


def vjepa2_ac_vitg(**overrides: Any) -> ACPredictor:
    """vjepa2_ac_vitg: the released AC predictor (ViT-g features 1408 → 1024 wide, 24 blocks, 16 heads, 305 M)."""
    return ACPredictor(ACPredictorConfig(**overrides))


def ac_predictor_tiny(**overrides: Any) -> ACPredictor:
    """ac_predictor_tiny: 64 wide, 2 blocks, 4 heads (head_dim 16) for tests and CPU demos."""
    values: dict[str, Any] = {"encoder_dim": 64, "embed_dim": 64, "depth": 2, "num_heads": 4, "img_size": 64}
    values.update(overrides)
    return ACPredictor(ACPredictorConfig(**values))


def load_official_ac_predictor(
    source: str | Mapping[str, torch.Tensor], key: str = "predictor", **overrides: Any
) -> ACPredictor:
    """Build an AC predictor from the official layout and load it **strictly**.

    Args:
        source: path of an official ``.pt`` (``vjepa2-ac-vitg.pt``; read with ``weights_only=True``) or an
            already loaded top-level dict / predictor state dict.
        key: top-level entry holding the predictor (``predictor``).
        overrides: :class:`ACPredictorConfig` fields (``img_size`` is not recorded in the weights; default 256).

    Returns:
        The predictor with the weights loaded; sizes are inferred from the weight shapes.
    """
    from jepa.hub.layouts import strip_prefixes

    obj = torch.load(source, map_location="cpu", weights_only=True) if isinstance(source, str) else source
    state = obj.get(key, obj)
    state = strip_prefixes(state)
    if "predictor_embed.weight" not in state:
        raise KeyError(f"load_official_ac_predictor: no 'predictor_embed.weight' (first keys {list(state)[:5]})")
    embed_dim, encoder_dim = state["predictor_embed.weight"].shape
    depth = len({k.split(".")[1] for k in state if k.startswith("predictor_blocks.")})
    hidden = state["predictor_blocks.0.mlp.fc1.weight"].shape[0]
    values: dict[str, Any] = {
        "encoder_dim": int(encoder_dim),
        "embed_dim": int(embed_dim),
        "depth": depth,
        "num_heads": 16 if embed_dim == 1024 else max(1, int(embed_dim) // 64),
        "mlp_ratio": hidden / embed_dim,
        "action_dim": int(state["action_encoder.weight"].shape[1]),
        "state_dim": int(state["state_encoder.weight"].shape[1]),
        "extrinsics_dim": int(state["extrinsics_encoder.weight"].shape[1]),
        "qkv_bias": "predictor_blocks.0.attn.qkv.bias" in state,
    }
    values.update(overrides)
    model = ACPredictor(ACPredictorConfig(**values))
    model.load_state_dict(state, strict=True)
    return model
