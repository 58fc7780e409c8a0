"""Clip transforms in pure torch: pretraining, probe training and evaluation (spec data.md §5-§7).

Every transform takes a ``(T, H, W, 3)`` uint8 clip and an optional ``numpy.random.Generator``. Without one, a
generator is seeded from torch's global RNG, which the DataLoader seeds differently in every worker
(``base_seed + worker_id``): runs are reproducible with ``torch.manual_seed`` / Lightning's ``seed_everything``.

Resizing is bilinear with ``align_corners=False`` and no antialiasing (``torch.nn.functional.interpolate``), the
official tensor path. The evaluation transforms round the resized frames to integers, as the official OpenCV resize of
uint8 frames does (OpenCV's fixed-point weights can still differ by one grey level).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from jepa.data.randaugment import RandAugment
from jepa.data.random_erasing import RandomErasing

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EvalTransform",
    "PretrainTransform",
    "ProbeTrainTransform",
    "default_rng",
    "normalize",
    "random_resized_crop_box",
    "resize_short_side",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_rng(rng: np.random.Generator | None = None) -> np.random.Generator:
    """``rng`` itself, or a generator seeded from torch's global RNG (seeded per DataLoader worker)."""
    if rng is not None:
        return rng
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


def _check_clip(clip: torch.Tensor, who: str) -> None:
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"{who} expects a (T, H, W, 3) clip, got shape {tuple(clip.shape)}")


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_dim: int = 0) -> torch.Tensor:
    """``(x - mean) / std`` along ``channel_dim``."""
    shape = [1] * x.ndim
    shape[channel_dim] = -1
    m = torch.tensor(mean, dtype=x.dtype).view(shape)
    s = torch.tensor(std, dtype=x.dtype).view(shape)
    return (x - m) / s


def random_resized_crop_box(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """Random-resized-crop box ``(top, left, h, w)`` (spec §5 step 1).

    Up to 10 attempts: area ``U(scale)·H·W``, aspect ratio log-uniform in ``ratio``, ``w = round(sqrt(area·ar))``,
    ``h = round(sqrt(area/ar))``, accepted if ``0 < w <= W`` and ``0 < h <= H``, top-left uniform. Otherwise a
    centre crop with the aspect ratio clamped into ``ratio``.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of the last two dims of a 4-D float tensor (align_corners=False, no antialias)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)


def resize_short_side(x: torch.Tensor, short: int, *, quantize: bool = True) -> torch.Tensor:
    """Resize ``(C, T, H, W)`` (or any 4-D ``(..., H, W)``) so the short side is ``short``; the long side is
    ``int(short · long / short_side)`` (truncation). ``quantize`` rounds to integers in [0, 255] (uint8 resize)."""
    h, w = x.shape[-2:]
    size = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)  # long side truncated
    out = _resize(x, size)
    if quantize and size != (h, w):
        out = out.round().clamp(0, 255)
    return out


def _resized_crop(x: torch.Tensor, box: tuple[int, int, int, int], crop_size: int) -> torch.Tensor:
    top, left, h, w = box
    return _resize(x[..., top : top + h, left : left + w], (crop_size, crop_size))


class PretrainTransform:
    """Pretraining augmentation (official ``app/vjepa/transforms.py::VideoTransform``, spec §5).

    Random resized crop (same box for all frames) → horizontal flip (p 0.5) → normalise with ImageNet mean/std
    scaled by 255 → optional random erasing (``reprob``, 0 in the recipes).

    Args:
        crop_size: output side (256 / 384).
        scale, ratio: random-resized-crop area fraction and aspect-ratio range.
        hflip: random horizontal flip of the whole clip.
        reprob: random-erasing probability (0 = off).
        mean, std: normalisation in 0-1 units.
    """

    def __init__(
        self,
        crop_size: int = 256,
        scale: tuple[float, float] = (0.3, 1.0),
        ratio: tuple[float, float] = (0.75, 1.35),
        hflip: bool = True,
        reprob: float = 0.0,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.crop_size = crop_size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.hflip = hflip
        self.mean = tuple(255.0 * m for m in mean)
        self.std = tuple(255.0 * s for s in std)
        self.erase = RandomErasing(probability=reprob, mode="pixel") if reprob > 0 else None

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        """``(T, H, W, 3)`` uint8 → ``(3, T, crop, crop)`` float32 normalised."""
        _check_clip(clip, "PretrainTransform")
        rng = default_rng(rng)
        x = clip.permute(3, 0, 1, 2).float()  # (3, T, H, W), 0-255
        box = random_resized_crop_box(x.shape[-2], x.shape[-1], self.scale, self.ratio, rng)
        x = _resized_crop(x, box, self.crop_size)  # (3, T, crop, crop)
        if self.hflip and rng.uniform() < 0.5:
            x = x.flip(-1)
        x = normalize(x, self.mean, self.std)
        if self.erase is not None:
            x = self.erase(x.transpose(0, 1).contiguous(), rng).transpose(0, 1)  # erase on (T, 3, crop, crop)
        return x.contiguous()


class EvalTransform:
    """Evaluation transform (spec §6 and checkpoints §5): a list of ``num_views`` normalised views.

    - ``num_views == 1``: short side → ``int(crop·256/224)``, centre crop with offsets ``round((W − crop)/2)``,
      ``round((H − crop)/2)``.
    - ``num_views > 1``: short side → ``crop``; ``step = (max(H', W') − crop) // (num_views − 1)``; view ``i`` is the
      window ``[i·step, i·step + crop)`` along the height if ``H' > W'``, else along the width.

    Args:
        crop_size: output side.
        num_views: 1 or more (the probes use 1 or 3).
        quantize: round resized frames to integers like the official uint8 (OpenCV) resize.
        mean, std: normalisation in 0-1 units.
    """

    def __init__(
        self,
        crop_size: int = 224,
        num_views: int = 1,
        quantize: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if num_views < 1:
            raise ValueError(f"EvalTransform: num_views must be >= 1, got {num_views}")
        self.crop_size = crop_size
        self.num_views = num_views
        self.quantize = quantize
        self.mean = tuple(mean)
        self.std = tuple(std)

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x / 255.0, self.mean, self.std).contiguous()

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> list[torch.Tensor]:
        """``(T, H, W, 3)`` uint8 → list of ``num_views`` ``(3, T, crop, crop)`` float32 (``rng`` unused)."""
        _check_clip(clip, "EvalTransform")
        crop = self.crop_size
        x = clip.permute(3, 0, 1, 2).float()  # (3, T, H, W)
        if self.num_views == 1:
            x = resize_short_side(x, int(crop * 256 / 224), quantize=self.quantize)
            h, w = x.shape[-2:]
            top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
            return [self._finish(x[..., top : top + crop, left : left + crop])]
        x = resize_short_side(x, crop, quantize=self.quantize)  # (3, T, H', W'), short side = crop
        h, w = x.shape[-2:]
        step = (max(h, w) - crop) // (self.num_views - 1)
        views = []
        for i in range(self.num_views):
            start = i * step
            view = x[..., start : start + crop, :] if h > w else x[..., :, start : start + crop]
            views.append(self._finish(view))
        return views


class ProbeTrainTransform:
    """Probe training augmentation (official ``evals/video_classification_frozen/utils.py::VideoTransform``, §7).

    RandAugment (same ops on all frames) → ``/255`` → normalise → random resized crop → optional horizontal flip →
    random erasing of one box through the clip.

    Args:
        crop_size: output side.
        scale, ratio: random-resized-crop ranges.
        hflip: horizontal flip with p 0.5 (off for classification, on for EK100 anticipation).
        auto_augment: timm RandAugment string, ``None`` to disable.
        reprob: random-erasing probability.
        mean, std: normalisation in 0-1 units.
    """

    def __init__(
        self,
        crop_size: int = 224,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (0.75, 4 / 3),
        hflip: bool = False,
        auto_augment: str | None = "rand-m7-n4-mstd0.5-inc1",
        reprob: float = 0.25,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.crop_size = crop_size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.hflip = hflip
        self.randaugment = RandAugment.from_config(auto_augment) if auto_augment else None
        self.erase = RandomErasing(probability=reprob, mode="pixel") if reprob > 0 else None
        self.mean = tuple(mean)
        self.std = tuple(std)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        """``(T, H, W, 3)`` uint8 → ``(3, T, crop, crop)`` float32 normalised."""
        _check_clip(clip, "ProbeTrainTransform")
        rng = default_rng(rng)
        x = clip.permute(0, 3, 1, 2)  # (T, 3, H, W)
        if self.randaugment is not None:
            x = self.randaugment(x, rng)
        x = normalize(x.float() / 255.0, self.mean, self.std, channel_dim=1)
        x = x.permute(1, 0, 2, 3)  # (3, T, H, W)
        box = random_resized_crop_box(x.shape[-2], x.shape[-1], self.scale, self.ratio, rng)
        x = _resized_crop(x, box, self.crop_size)  # (3, T, crop, crop)
        if self.hflip and rng.uniform() < 0.5:
            x = x.flip(-1)
        if self.erase is not None:
            x = self.erase(x.transpose(0, 1).contiguous(), rng).transpose(0, 1)  # on (T, 3, crop, crop)
        return x.contiguous()
