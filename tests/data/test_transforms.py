"""Pretrain / eval / probe transforms: shapes, ranges, crop geometry, consistency across frames, erasing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jepa.data.random_erasing import RandomErasing
from jepa.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalTransform,
    PretrainTransform,
    ProbeTrainTransform,
    random_resized_crop_box,
)

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)


def static_clip(t: int = 4, h: int = 60, w: int = 80) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(0, 256, (h, w, 3), dtype=torch.uint8).expand(t, -1, -1, -1).contiguous()


def unnormalize(x: torch.Tensor) -> torch.Tensor:
    return (x * STD + MEAN) * 255  # (3, T, H, W) back to 0-255


def test_rrc_box_distribution_and_fallback() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = random_resized_crop_box(60, 80, (0.3, 1.0), (0.75, 1.35), rng)
        assert 0 < h <= 60 and 0 < w <= 80 and top + h <= 60 and left + w <= 80
        assert 0.3 * 4800 * 0.9 <= h * w <= 4800
    # A 1x100 strip can never fit a 0.75-1.35 box with enough area: centre crop, aspect clamped to 1.35.
    assert random_resized_crop_box(1, 100, (0.5, 1.0), (0.75, 1.35), rng) == (0, 49, 1, 1)
    # h = round(2 / 0.75) = 3, top = (100 - 3) // 2
    assert random_resized_crop_box(100, 2, (0.9, 1.0), (0.75, 1.35), rng) == (48, 0, 3, 2)


def test_pretrain_transform_shape_and_same_crop_on_all_frames() -> None:
    clip = static_clip()
    out = PretrainTransform(crop_size=32)(clip, np.random.default_rng(1))
    assert out.shape == (3, 4, 32, 32) and out.dtype == torch.float32
    for t in range(1, 4):
        assert torch.equal(out[:, t], out[:, 0])
    back = unnormalize(out)
    assert back.min() >= -1e-3 and back.max() <= 255 + 1e-3


def test_pretrain_transform_matches_manual_pipeline() -> None:
    clip = torch.randint(0, 256, (3, 50, 70, 3), dtype=torch.uint8)
    out = PretrainTransform(crop_size=24)(clip, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    top, left, h, w = random_resized_crop_box(50, 70, (0.3, 1.0), (0.75, 1.35), rng)
    flip = rng.uniform() < 0.5
    x = clip.permute(3, 0, 1, 2).float()[..., top : top + h, left : left + w]
    x = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False)
    if flip:
        x = x.flip(-1)
    torch.testing.assert_close(out, (x / 255 - MEAN) / STD)


def test_hflip_happens_about_half_the_time() -> None:
    clip = static_clip(t=2, h=8, w=8)
    no_flip = PretrainTransform(crop_size=8, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False)(clip)
    flipped = 0
    for seed in range(40):
        out = PretrainTransform(crop_size=8, scale=(1.0, 1.0), ratio=(1.0, 1.0))(clip, np.random.default_rng(seed))
        flipped += int(torch.equal(out, no_flip.flip(-1)))
        assert torch.equal(out, no_flip) or torch.equal(out, no_flip.flip(-1))
    assert 10 <= flipped <= 30


def test_eval_one_view_geometry() -> None:
    clip = torch.randint(0, 256, (2, 60, 90, 3), dtype=torch.uint8)
    (view,) = EvalTransform(crop_size=28)(clip)
    short = int(28 * 256 / 224)  # 32
    long = int(short * 90 / 60)  # 48
    resized = F.interpolate(clip.permute(3, 0, 1, 2).float(), size=(short, long), mode="bilinear").round()
    top, left = round((short - 28) / 2), round((long - 28) / 2)  # 2, 10
    expected = (resized[..., top : top + 28, left : left + 28] / 255 - MEAN) / STD
    assert view.shape == (3, 2, 28, 28)
    torch.testing.assert_close(view, expected)


@pytest.mark.parametrize(("h", "w"), [(40, 100), (100, 40)])
def test_eval_three_views_geometry(h: int, w: int) -> None:
    clip = torch.randint(0, 256, (2, h, w, 3), dtype=torch.uint8)
    views = EvalTransform(crop_size=20, num_views=3)(clip)
    long = int(20 * max(h, w) / min(h, w))  # 50
    size = (20, long) if w > h else (long, 20)
    resized = F.interpolate(clip.permute(3, 0, 1, 2).float(), size=size, mode="bilinear").round()
    step = (long - 20) // 2  # 15
    assert len(views) == 3
    for i, view in enumerate(views):
        assert view.shape == (3, 2, 20, 20)
        window = resized[..., :, i * step : i * step + 20] if w > h else resized[..., i * step : i * step + 20, :]
        torch.testing.assert_close(view, (window / 255 - MEAN) / STD)
    assert not torch.equal(views[0], views[2])


def test_probe_train_transform_shapes_and_consistency() -> None:
    clip = static_clip(t=4, h=48, w=64)
    transform = ProbeTrainTransform(crop_size=32, reprob=0.0)
    for seed in range(5):
        out = transform(clip, np.random.default_rng(seed))
        assert out.shape == (3, 4, 32, 32) and out.dtype == torch.float32
        for t in range(1, 4):
            assert torch.equal(out[:, t], out[:, 0])
        back = unnormalize(out)
        assert back.min() >= -1e-3 and back.max() <= 255 + 1e-3
    torch.manual_seed(3)
    a = transform(clip)
    torch.manual_seed(3)
    assert torch.equal(a, transform(clip))  # default RNG is seeded from torch's global RNG


def test_random_erasing_same_box_fresh_noise() -> None:
    clip = torch.zeros(5, 3, 40, 50)
    eraser = RandomErasing(probability=1.0)
    rng = np.random.default_rng(0)
    eraser(clip, rng, torch.Generator().manual_seed(0))
    mask = clip != 0  # (5, 3, 40, 50)
    assert mask.any()
    for t in range(1, 5):
        assert torch.equal(mask[t], mask[0])  # same box
        assert not torch.equal(clip[t], clip[0])  # fresh noise per frame
    rows, cols = mask[0, 0].any(1).nonzero(), mask[0, 0].any(0).nonzero()
    h, w = len(rows), len(cols)
    assert 0.02 * 2000 * 0.8 <= h * w <= 2000 / 3 * 1.2 and h < 40 and w < 50
    assert abs(float(clip[mask].std()) - 1.0) < 0.1


def test_random_erasing_probability() -> None:
    eraser = RandomErasing(probability=0.25)
    rng = np.random.default_rng(0)
    hits = sum(bool(eraser.boxes(40, 50, rng)) for _ in range(2000))
    assert 0.21 < hits / 2000 < 0.29
    aspects = []
    for _ in range(300):
        ((_, _, h, w),) = RandomErasing(probability=1.0).boxes(400, 400, rng)
        aspects.append(math.log(h / w))
    assert min(aspects) < -0.8 and max(aspects) > 0.8  # log-uniform in [log 0.3, log 1/0.3]
