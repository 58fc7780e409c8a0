"""RandAugment for video clips in pure torch (timm-style ``rand-m7-n4-mstd0.5-inc1``, spec probes §7.1).

The ops, their magnitudes, signs and application coin flips are drawn **once per clip** and applied identically to
every frame (the official video variant). Magnitude to parameter mappings follow timm's ``auto_augment.py`` level
functions (magnitude on a 0-10 scale):

| op | parameter |
|---|---|
| Rotate | ``±30·m/10`` degrees, counter-clockwise about the centre |
| ShearX / ShearY | ``±0.3·m/10`` |
| TranslateXRel / TranslateYRel | ``±0.45·m/10`` of the width / height |
| PosterizeIncreasing (Posterize) | keep ``4 − int(4·m/10)`` (``int(4·m/10)``) bits |
| SolarizeIncreasing (Solarize) | invert pixels ``>= 256 − int(256·m/10)`` (``>= int(256·m/10)``) |
| SolarizeAdd | add ``int(110·m/10)`` to pixels ``< 128`` |
| Color/Contrast/Brightness/SharpnessIncreasing | blend factor ``1 ± 0.9·m/10`` (non-increasing: ``1.8·m/10 + 0.1``) |
| AutoContrast, Equalize, Invert | no magnitude |

Each op is applied with probability 0.5; with ``mstd > 0`` its magnitude is drawn from ``N(m, mstd)`` clipped to
``[0, mmax]`` (10). Pixel statistics ops (AutoContrast, Equalize, Contrast's mean) are computed per frame, as PIL
does per image.

Numeric differences from the PIL implementation: geometric ops use ``grid_sample`` bicubic (a = −0.75; PIL uses
a = −0.5) with the fill colour (128, 128, 128) blended in at the borders by zero-padding the centred image, instead of
PIL's hard cut-off; colour ops follow PIL's integer formulas (truncating blends, ITU-R 601 luma) and match PIL up to
±1 grey level. Results are rounded to integers in [0, 255] like PIL's uint8 images.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["RAND_INCREASING_OPS", "RAND_OPS", "RandAugment", "apply_op", "parse_rand_augment"]

FILL = 128.0
LEVEL_DENOM = 10.0

RAND_INCREASING_OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)
RAND_OPS = tuple(name.replace("Increasing", "") for name in RAND_INCREASING_OPS)


# --------------------------------------------------------------------------------------------------------------------
# Ops on (T, 3, H, W) float tensors with integer values in [0, 255].


def _luma(x: torch.Tensor) -> torch.Tensor:
    """PIL ``convert("L")``: ``(R·19595 + G·38470 + B·7471 + 2^15) >> 16``; (T, 1, H, W)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return torch.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536)


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ``Image.blend(degenerate, x, factor)``: truncating, clipped to [0, 255]."""
    return torch.trunc(degenerate + factor * (x - degenerate)).clamp(0, 255)


def _auto_contrast(x: torch.Tensor) -> torch.Tensor:
    xd = x.double()  # PIL builds its lookup table in double precision: int(i * scale + offset)
    lo = xd.amin(dim=(2, 3), keepdim=True)  # per frame and channel, (T, 3, 1, 1)
    hi = xd.amax(dim=(2, 3), keepdim=True)
    valid = hi > lo
    scale = torch.where(valid, torch.full_like(hi, 255.0) / (hi - lo).clamp(min=1), torch.ones_like(hi))  # true div
    offset = torch.where(valid, -lo * scale, torch.zeros_like(lo))
    return torch.where(valid, torch.floor(xd * scale + offset).clamp(0, 255), xd).to(x.dtype)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    t, c, h, w = x.shape
    flat = x.reshape(t * c, h * w).long()  # (TC, HW)
    hist = torch.zeros(t * c, 256, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    last_bin = 255 - torch.flip(hist > 0, dims=[1]).long().argmax(dim=1)  # highest non-empty bin per row
    step = (hist.sum(1) - hist.gather(1, last_bin[:, None])[:, 0]) // 255  # (TC,)
    before = torch.cumsum(hist, dim=1) - hist  # pixels below each level
    safe = step.clamp(min=1)[:, None]
    lut = ((safe // 2 + before) // safe).clamp(max=255)
    lut = torch.where(step[:, None] > 0, lut, torch.arange(256).expand(t * c, 256))  # step 0: unchanged
    return lut.gather(1, flat).reshape(t, c, h, w).to(x.dtype)


def _posterize(x: torch.Tensor, bits: int) -> torch.Tensor:
    if bits >= 8:
        return x
    mask = ~(2 ** (8 - max(bits, 0)) - 1) & 0xFF
    return (x.to(torch.uint8) & mask).to(x.dtype)


def _solarize(x: torch.Tensor, threshold: float) -> torch.Tensor:
    return torch.where(x >= threshold, 255 - x, x)


def _solarize_add(x: torch.Tensor, add: int, threshold: float = 128) -> torch.Tensor:
    return torch.where(x < threshold, (x + add).clamp(max=255), x)


def _color(x: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(_luma(x).expand_as(x), x, factor)


def _contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    mean = torch.floor(_luma(x).mean(dim=(1, 2, 3), keepdim=True) + 0.5)  # per frame, (T, 1, 1, 1)
    return _blend(mean.expand_as(x), x, factor)


def _brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(torch.zeros_like(x), x, factor)


def _sharpness(x: torch.Tensor, factor: float) -> torch.Tensor:
    t, c, h, w = x.shape
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0  # PIL ImageFilter.SMOOTH
    smooth = F.conv2d(x.reshape(t * c, 1, h, w), kernel[None, None]).reshape(t, c, h - 2, w - 2)
    degenerate = x.clone()
    degenerate[:, :, 1:-1, 1:-1] = torch.floor(smooth + 0.5)  # PIL keeps the 1-pixel border
    return _blend(degenerate, x, factor)


def _affine(x: torch.Tensor, matrix: tuple[float, float, float, float, float, float]) -> torch.Tensor:
    """PIL ``Image.transform(AFFINE, matrix, BICUBIC, fillcolor=128)``: output pixel centre (x+.5, y+.5) samples
    the input at ``(a·x + b·y + c, d·x + e·y + f)``."""
    t, _, h, w = x.shape
    a, b, c, d, e, f = matrix
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")  # (H, W)
    x_in = a * xs + b * ys + c
    y_in = d * xs + e * ys + f
    grid = torch.stack([2 * x_in / w - 1, 2 * y_in / h - 1], dim=-1)  # (H, W, 2) in align_corners=False units
    grid = grid.to(x.dtype).expand(t, h, w, 2)
    out = F.grid_sample(x - FILL, grid, mode="bicubic", padding_mode="zeros", align_corners=False) + FILL
    return out.round().clamp(0, 255)


def _rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    _, _, h, w = x.shape
    angle = -math.radians(degrees)  # PIL Image.rotate: counter-clockwise, inverse mapping about (w/2, h/2)
    a, b = math.cos(angle), math.sin(angle)
    d, e = -math.sin(angle), math.cos(angle)
    cx, cy = w / 2.0, h / 2.0
    c = a * -cx + b * -cy + cx
    f = d * -cx + e * -cy + cy
    return _affine(x, (a, b, c, d, e, f))


_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "AutoContrast": lambda x: _auto_contrast(x),
    "Equalize": lambda x: _equalize(x),
    "Invert": lambda x: 255 - x,
    "Rotate": _rotate,
    "Posterize": _posterize,
    "Solarize": _solarize,
    "SolarizeAdd": _solarize_add,
    "Color": _color,
    "Contrast": _contrast,
    "Brightness": _brightness,
    "Sharpness": _sharpness,
    "ShearX": lambda x, s: _affine(x, (1, s, 0, 0, 1, 0)),
    "ShearY": lambda x, s: _affine(x, (1, 0, 0, s, 1, 0)),
    "TranslateXRel": lambda x, p: _affine(x, (1, 0, p * x.shape[-1], 0, 1, 0)),
    "TranslateYRel": lambda x, p: _affine(x, (1, 0, 0, 0, 1, p * x.shape[-2])),
}


def apply_op(x: torch.Tensor, name: str, *args: float) -> torch.Tensor:
    """Apply one op to a ``(T, 3, H, W)`` float clip in 0-255 (``...Increasing`` names share the base op)."""
    return _OPS[name.replace("Increasing", "")](x, *args)


# --------------------------------------------------------------------------------------------------------------------
# Magnitude -> op arguments (timm level functions). `sign` is +1 or -1, drawn per op.


def _op_args(name: str, magnitude: float, sign: float, translate_pct: float = 0.45) -> tuple[float, ...]:
    level = magnitude / LEVEL_DENOM
    if name in ("AutoContrast", "Equalize", "Invert"):
        return ()
    if name == "Rotate":
        return (sign * 30.0 * level,)
    if name in ("ShearX", "ShearY"):
        return (sign * 0.3 * level,)
    if name in ("TranslateXRel", "TranslateYRel"):
        return (sign * translate_pct * level,)
    if name == "PosterizeIncreasing":
        return (4 - int(level * 4),)
    if name == "Posterize":
        return (int(level * 4),)
    if name == "SolarizeIncreasing":
        return (256 - int(level * 256),)
    if name == "Solarize":
        return (int(level * 256),)
    if name == "SolarizeAdd":
        return (int(level * 110),)
    if name.endswith("Increasing"):  # Color / Contrast / Brightness / Sharpness
        return (1.0 + sign * 0.9 * level,)
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return (level * 1.8 + 0.1,)
    raise KeyError(f"unknown RandAugment op {name!r}; expected one of {sorted(set(RAND_OPS + RAND_INCREASING_OPS))}")


@dataclass
class RandAugment:
    """Video RandAugment: ``num_ops`` ops drawn with replacement, each applied with probability ``prob``.

    Args:
        num_ops: ``n``; magnitude: ``m`` (0-10); magnitude_std: ``mstd`` (0: fixed magnitude; ``inf``: uniform in
        [0, m]); magnitude_max: clip bound; increasing: use the ``...Increasing`` op variants; prob: per-op
        probability; translate_pct: relative translation at magnitude 10.
    """

    num_ops: int = 4
    magnitude: float = 7.0
    magnitude_std: float = 0.5
    magnitude_max: float = 10.0
    increasing: bool = True
    prob: float = 0.5
    translate_pct: float = 0.45

    @classmethod
    def from_config(cls, config: str) -> RandAugment:
        """Build from a timm string such as ``"rand-m7-n4-mstd0.5-inc1"``."""
        return cls(**parse_rand_augment(config))

    @property
    def ops(self) -> tuple[str, ...]:
        return RAND_INCREASING_OPS if self.increasing else RAND_OPS

    def sample(self, rng: np.random.Generator) -> list[tuple[str, tuple[float, ...]]]:
        """Draw the ops and their arguments for one clip; ops skipped by their coin flip are left out."""
        chosen = rng.choice(len(self.ops), size=self.num_ops, replace=True)
        plan = []
        for k in chosen:
            name = self.ops[int(k)]
            if self.prob < 1.0 and rng.random() > self.prob:
                continue
            magnitude = self.magnitude
            if self.magnitude_std == float("inf"):
                magnitude = rng.uniform(0.0, magnitude)
            elif self.magnitude_std > 0:
                magnitude = rng.normal(magnitude, self.magnitude_std)
            magnitude = min(max(0.0, magnitude), self.magnitude_max)
            sign = -1.0 if rng.random() > 0.5 else 1.0
            plan.append((name, _op_args(name, magnitude, sign, self.translate_pct)))
        return plan

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Augment a clip.

        Args:
            clip: ``(T, 3, H, W)`` uint8, or float with values in 0-255.
            rng: draws the ops (once for the whole clip).

        Returns:
            The augmented clip, same shape and dtype (float outputs hold integer values).
        """
        if clip.ndim != 4 or clip.shape[1] != 3:
            raise ValueError(f"RandAugment expects a (T, 3, H, W) clip, got shape {tuple(clip.shape)}")
        x = clip.float()
        for name, args in self.sample(rng):
            x = apply_op(x, name, *args)
        return x.to(torch.uint8) if clip.dtype == torch.uint8 else x.to(clip.dtype)


def parse_rand_augment(config: str) -> dict:
    """Parse ``"rand-m7-n4-mstd0.5-inc1"`` (also ``mmax``, ``p``) into :class:`RandAugment` keyword arguments."""
    parts = config.split("-")
    if parts[0] != "rand":
        raise ValueError(f"RandAugment config {config!r} must start with 'rand-'")
    kwargs: dict = {}
    for part in parts[1:]:
        match = re.fullmatch(r"([a-z]+)([0-9.]+|inf)", part)
        if match is None:
            raise ValueError(f"RandAugment config {config!r}: cannot parse section {part!r}")
        key, value = match.groups()
        if key == "m":
            kwargs["magnitude"] = float(value)
        elif key == "n":
            kwargs["num_ops"] = int(value)
        elif key == "mstd":
            kwargs["magnitude_std"] = float(value)
        elif key == "mmax":
            kwargs["magnitude_max"] = float(value)
        elif key == "inc":
            kwargs["increasing"] = bool(int(value))
        elif key == "p":
            kwargs["prob"] = float(value)
        else:
            known = "m, n, mstd, mmax, inc, p"
            raise ValueError(f"RandAugment config {config!r}: unknown section {part!r} (known: {known})")
    return kwargs
