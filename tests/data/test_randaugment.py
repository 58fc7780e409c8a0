"""RandAugment: config parsing, per-op behaviour, identical ops on every frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jepa.data.randaugment import RAND_INCREASING_OPS, RandAugment, apply_op, parse_rand_augment


@pytest.fixture
def clip() -> torch.Tensor:
    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(40.0), indexing="ij")
    frame = torch.stack([x * 6, y * 7, (x + y) * 3]).clamp(0, 255).round()  # (3, 32, 40), smooth
    return torch.stack([frame, (frame * 0.8).round()])  # (2, 3, 32, 40) float 0-255


def test_parse_official_config() -> None:
    assert parse_rand_augment("rand-m7-n4-mstd0.5-inc1") == {
        "magnitude": 7.0,
        "num_ops": 4,
        "magnitude_std": 0.5,
        "increasing": True,
    }
    ra = RandAugment.from_config("rand-m9-n2-mstd0-inc0-p0.3")
    assert (ra.magnitude, ra.num_ops, ra.magnitude_std, ra.increasing, ra.prob) == (9.0, 2, 0.0, False, 0.3)
    assert len(RandAugment().ops) == 15 and RandAugment().ops == RAND_INCREASING_OPS
    with pytest.raises(ValueError, match="start with 'rand-'"):
        parse_rand_augment("augmix-m7")
    with pytest.raises(ValueError, match="unknown section"):
        parse_rand_augment("rand-m7-q3")


def test_invert_is_exact(clip: torch.Tensor) -> None:
    assert torch.equal(apply_op(clip, "Invert"), 255 - clip)


def test_colour_ops(clip: torch.Tensor) -> None:
    assert torch.equal(apply_op(clip, "PosterizeIncreasing", 2), (clip.to(torch.uint8) & 0xC0).float())
    assert torch.equal(apply_op(clip, "SolarizeIncreasing", 100), torch.where(clip >= 100, 255 - clip, clip))
    assert torch.equal(apply_op(clip, "SolarizeAdd", 30), torch.where(clip < 128, (clip + 30).clamp(max=255), clip))
    assert torch.equal(apply_op(clip, "BrightnessIncreasing", 0.5), torch.trunc(clip * 0.5))
    assert torch.equal(apply_op(clip, "ColorIncreasing", 1.0), clip)  # factor 1 = identity for blends
    assert torch.equal(apply_op(clip, "SharpnessIncreasing", 1.0), clip)
    gray = apply_op(clip, "ColorIncreasing", 0.0)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    flat = apply_op(clip, "ContrastIncreasing", 0.0)  # every pixel = the frame's mean luma
    assert flat[0].unique().numel() == 1 and flat[1].unique().numel() == 1 and flat[0, 0, 0, 0] != flat[1, 0, 0, 0]


def test_auto_contrast_and_equalize_stretch_each_frame(clip: torch.Tensor) -> None:
    dim = clip * 0.5 + 40  # range [40, 167.5] per channel
    out = apply_op(dim.round(), "AutoContrast")
    for t, c in [(0, 0), (1, 2)]:  # PIL's lookup table: int(i * scale + offset), scale = 255 / (hi - lo)
        values = dim.round()[t, c]
        lo, hi = float(values.min()), float(values.max())
        scale = 255.0 / (hi - lo)
        lut = torch.tensor([min(255, max(0, int(i * scale - lo * scale))) for i in range(256)], dtype=torch.float32)
        assert torch.equal(out[t, c], lut[values.long()])
    assert out.amin(dim=(2, 3)).eq(0).all() and out.amax(dim=(2, 3)).ge(254).all()
    eq = apply_op(dim.round(), "Equalize")
    assert eq.amin() >= 0 and eq.amax() <= 255 and eq[:, 0].amax() > dim[:, 0].amax()
    const = torch.full((1, 3, 8, 8), 77.0)
    assert torch.equal(apply_op(const, "AutoContrast"), const) and torch.equal(apply_op(const, "Equalize"), const)


def test_geometric_ops(clip: torch.Tensor) -> None:
    assert torch.equal(apply_op(clip, "Rotate", 0.0), clip)
    assert torch.equal(apply_op(clip, "ShearX", 0.0), clip)
    # Integer translation: a pure shift, with the fill colour 128 entering from the right.
    shifted = apply_op(clip, "TranslateXRel", 0.25)  # 10 pixels of 40
    torch.testing.assert_close(shifted[..., :30], clip[..., 10:], atol=0, rtol=0)
    assert torch.equal(shifted[..., 31:], torch.full_like(shifted[..., 31:], 128.0))
    down = apply_op(clip, "TranslateYRel", -0.25)  # 8 pixels of 32: content moves down
    torch.testing.assert_close(down[..., 8:, :], clip[..., :24, :], atol=0, rtol=0)
    # 90 degrees counter-clockwise on a square image equals rot90.
    square = clip[..., :32, :32]
    torch.testing.assert_close(apply_op(square, "Rotate", 90.0), torch.rot90(square, 1, dims=(2, 3)), atol=0, rtol=0)


def test_same_ops_on_every_frame() -> None:
    torch.manual_seed(0)
    frame = torch.randint(0, 256, (3, 24, 28), dtype=torch.uint8)
    clip = frame.expand(6, -1, -1, -1).contiguous()  # (6, 3, 24, 28) identical frames
    ra = RandAugment(prob=1.0)
    changed = 0
    for seed in range(12):
        out = ra(clip, np.random.default_rng(seed))
        assert out.dtype == torch.uint8 and out.shape == clip.shape
        assert bool((out == out[0]).all()), f"frames differ for seed {seed}"
        changed += int(not torch.equal(out[0], frame))
    assert changed >= 10


def test_sampling_statistics() -> None:
    ra = RandAugment()
    rng = np.random.default_rng(0)
    plans = [ra.sample(rng) for _ in range(2000)]
    applied = [len(p) for p in plans]
    assert 1.8 < np.mean(applied) < 2.2  # 4 ops with p 0.5
    rotations = [args[0] for p in plans for name, args in p if name == "Rotate"]
    assert min(rotations) < -15 and max(rotations) > 15 and max(abs(r) for r in rotations) <= 30
    assert np.mean(np.abs(rotations)) == pytest.approx(21.0, abs=0.5)  # 30 * 7 / 10
    names = {name for p in plans for name, _ in p}
    assert names == set(RAND_INCREASING_OPS)
