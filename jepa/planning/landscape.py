"""Energy landscape around a ground-truth action (spec: ac_planning.md §6.5) and a dependency-free PNG writer."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np
import torch

from jepa.planning.energy import WorldModel


@torch.no_grad()
def energy_landscape(
    world_model: WorldModel,
    frame0: torch.Tensor,
    state0: torch.Tensor,
    goal: torch.Tensor,
    values: Sequence[float] = tuple(np.linspace(-0.075, 0.075, 5)),
    axes: tuple[int, int] = (0, 1),
) -> torch.Tensor:
    """Energy of one predictor step for a grid of actions over two action axes (others 0).

    Args:
        world_model: encoder + AC predictor.
        frame0: ``(1, N, D)`` normalised features of the start frame.
        state0: ``(1, 7)`` start pose.
        goal: ``(1, N, D)`` normalised features of the frame actually reached.
        values: grid values of each axis (official ``linspace(−0.075, 0.075, 5)``).
        axes: the two action dimensions swept (0 = dx, 1 = dy, 2 = dz).

    Returns:
        ``(len(values), len(values))`` energies, ``[i, j]`` for ``axes[0] = values[i]``, ``axes[1] = values[j]``.
    """
    grid = torch.tensor(list(values), dtype=torch.float32, device=frame0.device)
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    actions = torch.zeros(a.numel(), 1, 7, device=frame0.device)
    actions[:, 0, axes[0]] = a.flatten()
    actions[:, 0, axes[1]] = b.flatten()
    return world_model.energy(frame0, state0, goal, actions).view(len(grid), len(grid))


def colormap(values: np.ndarray) -> np.ndarray:
    """Map ``(H, W)`` floats to ``(H, W, 3)`` uint8 (dark blue = low, yellow = high; min–max scaled)."""
    v = np.asarray(values, dtype=np.float64)
    v = (v - v.min()) / max(float(v.max() - v.min()), 1e-12)
    stops = np.array([[0.27, 0.0, 0.33], [0.13, 0.57, 0.55], [0.99, 0.91, 0.14]])  # viridis-like
    pos = v * (len(stops) - 1)
    low = np.floor(pos).clip(0, len(stops) - 2).astype(int)
    frac = (pos - low)[..., None]
    return ((stops[low] * (1 - frac) + stops[low + 1] * frac) * 255).round().astype(np.uint8)


def write_png(path: str, image: np.ndarray) -> None:
    """Write ``(H, W, 3)`` uint8 RGB as a PNG (zlib only, no imaging library)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_png: expected (H, W, 3) uint8, got {image.shape}")
    height, width = image.shape[:2]
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
        )


def landscape_image(energies: np.ndarray, cell: int = 32, marker: tuple[int, int] | None = None) -> np.ndarray:
    """Heat map of ``(n, n)`` energies (row = first axis, top = most negative), each cell ``cell`` px; optional
    white frame around ``marker`` (the ground-truth cell) and a black dot on the minimum."""
    rgb = colormap(energies).repeat(cell, 0).repeat(cell, 1)
    if marker is not None:
        i, j = marker
        rgb[i * cell : (i + 1) * cell, [j * cell, (j + 1) * cell - 1]] = 255
        rgb[[i * cell, (i + 1) * cell - 1], j * cell : (j + 1) * cell] = 255
    i, j = np.unravel_index(int(np.argmin(energies)), energies.shape)
    c = cell // 2
    rgb[i * cell + c - 3 : i * cell + c + 3, j * cell + c - 3 : j * cell + c + 3] = 0
    return rgb
