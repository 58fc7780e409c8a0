"""3-D RoPE against an independent per-channel reference written from spec encoder.md §5."""

from __future__ import annotations

import math

import pytest
import torch

from jepa.encoders.masking import ids_to_thw
from jepa.encoders.rope import apply_rope_3d, rope_split, rotate


def reference_rope_vector(vec: list[float], t: int, h: int, w: int, mode: str) -> list[float]:
    """Spec §5.1/§5.3 in plain python: split s per axis, rotate pairs, leave the tail alone."""
    head_dim = len(vec)
    s = 2 * ((head_dim // 3) // 2)
    half = s // 2
    out = list(vec)
    for axis, p in enumerate((t, h, w)):
        base = axis * s
        for i in range(half):
            c0, c1 = 2 * i, 2 * i + 1
            if mode == "official":  # tiled angles: channel c uses omega_(c mod K)
                th0 = p * 10000.0 ** (-(c0 % half) / half)
                th1 = p * 10000.0 ** (-(c1 % half) / half)
            else:  # interleaved: both members of pair i use omega_i
                th0 = th1 = p * 10000.0 ** (-i / half)
            x0, x1 = vec[base + c0], vec[base + c1]
            out[base + c0] = x0 * math.cos(th0) - x1 * math.sin(th0)
            out[base + c1] = x1 * math.cos(th1) + x0 * math.sin(th1)
    return out


def decode(n: int, grid: tuple[int, int]) -> tuple[int, int, int]:
    hp, wp = grid
    return n // (hp * wp), (n % (hp * wp)) // wp, n % wp


@pytest.mark.parametrize("head_dim,expected_s", [(32, 10), (64, 20), (80, 26), (88, 28), (104, 34), (6, 2), (12, 4)])
def test_rope_split_table(head_dim: int, expected_s: int) -> None:
    assert rope_split(head_dim) == expected_s


def test_ids_to_thw_non_square() -> None:
    ids = torch.arange(2 * 3 * 5)
    t, h, w = ids_to_thw(ids, (3, 5))
    for n in range(ids.numel()):
        assert (int(t[n]), int(h[n]), int(w[n])) == decode(n, (3, 5))
    assert (int(t[-1]), int(h[-1]), int(w[-1])) == (1, 2, 4)


@pytest.mark.parametrize("mode", ["official", "interleaved"])
@pytest.mark.parametrize("head_dim", [32, 64, 80])
def test_rope_matches_reference_masked_non_square(head_dim: int, mode: str) -> None:
    torch.manual_seed(head_dim)
    grid = (3, 5)  # non-square
    batch, heads, total = 2, 2, 4 * 3 * 5
    ids = torch.stack([torch.randperm(total)[:7] for _ in range(batch)])  # (B, K) keep indices, unsorted
    x = torch.randn(batch, heads, ids.shape[1], head_dim, dtype=torch.float64)
    out = apply_rope_3d(x, ids, grid, mode=mode)
    assert out.shape == x.shape and out.dtype == torch.float64
    for b in range(batch):
        for head in range(heads):
            for k in range(ids.shape[1]):
                t, h, w = decode(int(ids[b, k]), grid)
                expected = reference_rope_vector(x[b, head, k].tolist(), t, h, w, mode)
                torch.testing.assert_close(out[b, head, k], torch.tensor(expected, dtype=torch.float64))
    # fp32 path: the same numbers up to fp32 rounding.
    out32 = apply_rope_3d(x.float(), ids, grid, mode=mode)
    torch.testing.assert_close(out32, out.float(), atol=2e-5, rtol=1e-5)


def test_rope_shared_ids_equal_per_sample_ids() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 64)
    ids = torch.arange(12)
    torch.testing.assert_close(apply_rope_3d(x, ids, (2, 3)), apply_rope_3d(x, ids.expand(2, -1), (2, 3)))


def test_rope_hand_computed_one_head() -> None:
    # head_dim 12 → s = 4 per axis, K = 2, omega = [1, 0.01]; token at t=1, h=0, w=0.
    x = torch.zeros(1, 1, 1, 12, dtype=torch.float64)
    x[..., 0] = 1.0
    x[..., 3] = 1.0
    ids = torch.tensor([4])  # grid (2, 2): t = 1, h = 0, w = 0
    official = apply_rope_3d(x, ids, (2, 2), mode="official")[0, 0, 0]
    # tiled: channel 0 angle 1, channel 1 angle 0.01, channel 2 angle 1, channel 3 angle 0.01
    expected_official = [0.5403023058681398, 0.009999833334166664, -0.8414709848078965, 0.9999500004166653]
    torch.testing.assert_close(official[:4], torch.tensor(expected_official, dtype=torch.float64))
    torch.testing.assert_close(official[4:], x[0, 0, 0, 4:])  # h = w = 0: identity
    interleaved = apply_rope_3d(x, ids, (2, 2), mode="interleaved")[0, 0, 0]
    expected_interleaved = [0.5403023058681398, 0.8414709848078965, -0.009999833334166664, 0.9999500004166653]
    torch.testing.assert_close(interleaved[:4], torch.tensor(expected_interleaved, dtype=torch.float64))


def test_rope_unrotated_tail_and_position_zero() -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 2, 5, 80)
    out = apply_rope_3d(x, torch.tensor([0, 1, 7, 20, 33]), (4, 4))
    torch.testing.assert_close(out[..., 78:], x[..., 78:], rtol=0, atol=0)  # 80 − 3·26 = 2 tail channels
    torch.testing.assert_close(out[:, :, 0], x[:, :, 0])  # id 0 → (0, 0, 0): identity


def test_interleaved_is_relative_official_is_not() -> None:
    torch.manual_seed(2)
    q, k = torch.randn(20, dtype=torch.float64), torch.randn(20, dtype=torch.float64)

    def score(mode: str, pq: int, pk: int) -> float:
        return float(rotate(q, torch.tensor(pq), mode) @ rotate(k, torch.tensor(pk), mode))

    assert score("interleaved", 3, 1) == pytest.approx(score("interleaved", 7, 5), abs=1e-10)
    assert abs(score("official", 3, 1) - score("official", 7, 5)) > 1e-3


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_rotate_bit_identical_to_transformers(dtype: torch.dtype) -> None:
    """Same arithmetic in the dtype of q/k as transformers' ``rotate_queries_or_keys``."""
    from transformers.models.vjepa2.modeling_vjepa2 import rotate_queries_or_keys

    torch.manual_seed(3)
    x = torch.randn(2, 3, 9, 26).to(dtype)
    pos = torch.randint(0, 24, (2, 3, 9))
    assert torch.equal(rotate(x, pos, "official"), rotate_queries_or_keys(x, pos))
    assert rotate(x, pos, "official").dtype == dtype


def test_rotate_rejects_odd_width_and_bad_mode() -> None:
    with pytest.raises(ValueError, match="even"):
        rotate(torch.zeros(3, 5), torch.zeros(3))
    with pytest.raises(ValueError, match="mode"):
        rotate(torch.zeros(3, 4), torch.zeros(3), mode="tiled")
