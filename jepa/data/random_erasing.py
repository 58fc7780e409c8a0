"""Random erasing of one box through a whole clip (spec data.md §7.2, the official ``cube=True`` variant)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["RandomErasing"]


@dataclass
class RandomErasing:
    """Erase one random box, the **same box in every frame**, after normalisation.

    With probability ``probability``: up to ``attempts`` draws of a target area ``U(min_area, max_area)·H·W / count``
    and an aspect ratio ``exp(U(log min_aspect, log max_aspect))``; ``h = round(sqrt(area·ar))``,
    ``w = round(sqrt(area/ar))``, accepted if ``w < W`` and ``h < H``; top-left uniform. The box is filled per frame
    with fresh values: ``"pixel"`` per-pixel N(0, 1), ``"rand"`` per-channel N(0, 1), ``"const"`` zeros.

    Args:
        probability: chance to erase (probes: 0.25).
        min_area, max_area: erased fraction of the frame.
        min_aspect, max_aspect: aspect range (``max_aspect`` defaults to ``1 / min_aspect``).
        mode: ``"pixel"``, ``"rand"`` or ``"const"``.
        min_count, max_count: number of boxes (official: 1).
        attempts: tries per box (official cube variant: 100).
    """

    probability: float = 0.25
    min_area: float = 0.02
    max_area: float = 1 / 3
    min_aspect: float = 0.3
    max_aspect: float | None = None
    mode: str = "pixel"
    min_count: int = 1
    max_count: int | None = None
    attempts: int = 100

    def __post_init__(self) -> None:
        if self.mode not in ("pixel", "rand", "const"):
            raise ValueError(f"RandomErasing mode must be 'pixel', 'rand' or 'const', got {self.mode!r}")

    def boxes(self, height: int, width: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
        """The ``(top, left, h, w)`` boxes for one clip (empty when the coin flip says no erasing)."""
        if rng.random() > self.probability:
            return []
        max_count = self.max_count or self.min_count
        count = self.min_count if self.min_count == max_count else int(rng.integers(self.min_count, max_count + 1))
        log_aspect = (math.log(self.min_aspect), math.log(self.max_aspect or 1 / self.min_aspect))
        out = []
        for _ in range(count):
            for _ in range(self.attempts):
                area = rng.uniform(self.min_area, self.max_area) * height * width / count
                aspect = math.exp(rng.uniform(*log_aspect))
                h = int(round(math.sqrt(area * aspect)))
                w = int(round(math.sqrt(area / aspect)))
                if w < width and h < height:
                    top = int(rng.integers(0, height - h + 1))
                    left = int(rng.integers(0, width - w + 1))
                    out.append((top, left, h, w))
                    break
        return out

    def __call__(
        self, clip: torch.Tensor, rng: np.random.Generator, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Erase in place and return ``clip``.

        Args:
            clip: ``(T, C, H, W)`` float (normalised).
            rng: draws the box.
            generator: draws the fill noise (default: seeded from ``rng``).
        """
        t, c, h, w = clip.shape
        boxes = self.boxes(h, w, rng)
        if boxes and generator is None:
            generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        for top, left, bh, bw in boxes:
            for i in range(t):  # fresh fill for every frame, same box
                if self.mode == "pixel":
                    fill = torch.randn((c, bh, bw), generator=generator, dtype=clip.dtype)
                elif self.mode == "rand":
                    fill = torch.randn((c, 1, 1), generator=generator, dtype=clip.dtype)
                else:
                    fill = torch.zeros((c, 1, 1), dtype=clip.dtype)
                clip[i, :, top : top + bh, left : left + bw] = fill
        return clip
