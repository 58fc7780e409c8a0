"""3-D rotary position embedding of V-JEPA 2 (spec: encoder.md §5).

Each head of width ``hd`` is split into three sub-blocks of ``s = 2·floor(floor(hd/3)/2)`` channels rotated by the
temporal, height and width position of the token, followed by ``hd − 3s`` unrotated channels.

Two frequency layouts are offered:

* ``"official"`` (QUIRK, reproduces released weights): the ``S/2`` angles are *tiled* twice over the ``S`` channels
  while the rotate-half partner pairs adjacent channels, so the two members of a pair use different angles.
* ``"interleaved"`` (corrected OPTION): standard interleaved RoPE, each pair shares one angle.

All arithmetic is done in the dtype of the rotated tensor, as in the official code and transformers.
"""

from __future__ import annotations

import torch

from jepa.encoders.masking import ids_to_thw

ROPE_MODES = ("official", "interleaved")


def rope_split(head_dim: int) -> int:
    """Channels per axis ``s = 2·floor(floor(head_dim/3)/2)``; ``head_dim − 3s`` channels stay unrotated."""
    return 2 * ((head_dim // 3) // 2)


def rotate(x: torch.Tensor, pos: torch.Tensor, mode: str = "official", theta: float = 10000.0) -> torch.Tensor:
    """Rotate the last dimension of ``x`` (width ``S``, even) by integer positions ``pos``.

    This is the per-axis building block: use it on any channel slice (e.g. temporal-only RoPE on action tokens).

    Args:
        x: ``(..., N, S)`` tensor (e.g. ``(B, heads, N, S)``).
        pos: integer positions broadcastable to ``x.shape[:-1]`` (e.g. ``(N,)``, ``(B, 1, N)``).
        mode: ``"official"`` (tiled frequencies, QUIRK) or ``"interleaved"`` (corrected).
        theta: RoPE base.

    Returns:
        Tensor shaped like ``x``, same dtype.
    """
    width = x.shape[-1]
    if width % 2 or width == 0:
        raise ValueError(f"rope.rotate: channel width must be even and > 0, got {width}")
    if mode not in ROPE_MODES:
        raise ValueError(f"rope.rotate: mode must be one of {ROPE_MODES}, got {mode!r}")
    half = width // 2
    # Same op sequence and dtype as the official `rotate_queries_or_keys`.
    omega = torch.arange(half, dtype=x.dtype, device=x.device)
    omega = omega / (width / 2.0)
    omega = 1.0 / theta**omega  # (S/2,)
    freq = pos.to(x.device).unsqueeze(-1) * omega  # (..., N, S/2) in x.dtype
    # official: angles tiled [θ_0..θ_K-1, θ_0..θ_K-1]; interleaved: [θ_0, θ_0, θ_1, θ_1, ...]
    tiled = mode == "official"
    freq = torch.cat([freq, freq], dim=-1) if tiled else freq.repeat_interleave(2, dim=-1)  # (..., N, S)
    pairs = x.unflatten(-1, (half, 2))  # (..., N, S/2, 2)
    partner = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)  # (..., N, S)
    return x * freq.cos() + partner * freq.sin()


def apply_rope_3d(
    x: torch.Tensor,
    ids: torch.Tensor,
    grid: tuple[int, int],
    mode: str = "official",
    theta: float = 10000.0,
) -> torch.Tensor:
    """Apply 3-D RoPE to per-head queries or keys.

    Args:
        x: ``(B, heads, N, hd)``, or with leading dims such as ``(2, B, heads, N, hd)`` (q and k together).
        ids: token ids ``(N,)`` shared by the batch, or ``(B, N)`` per sample.
        grid: ``(Hp, Wp)`` used to decode ids into (t, h, w).
        mode, theta: see :func:`rotate`.

    Returns:
        ``(B, heads, N, hd)``: channels ``[0, s)`` rotated by t, ``[s, 2s)`` by h, ``[2s, 3s)`` by w, rest unchanged.
    """
    head_dim = x.shape[-1]
    s = rope_split(head_dim)
    if s == 0:
        raise ValueError(f"apply_rope_3d: head_dim={head_dim} < 6 leaves no channels for 3-D RoPE")
    if ids.ndim == 2:
        ids = ids.unsqueeze(1)  # (B, 1, N): broadcast over heads
    t, h, w = ids_to_thw(ids, grid)
    parts = [
        rotate(x[..., 0:s], t, mode, theta),
        rotate(x[..., s : 2 * s], h, mode, theta),
        rotate(x[..., 2 * s : 3 * s], w, mode, theta),
    ]
    if 3 * s < head_dim:
        parts.append(x[..., 3 * s :])  # unrotated tail
    return torch.cat(parts, dim=-1)
