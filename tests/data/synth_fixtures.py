"""Small real media files for the data tests of datasets / shards / mixing / data modules (no network)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jepa.data.encode import encode_image, encode_video


def moving_frames(seed: int, frames: int = 24, size: int = 32) -> np.ndarray:
    """(frames, size, size, 3) uint8: a smooth random pattern shifted one pixel per frame (compresses well)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(4, 4, 3)).astype(np.uint8)
    tile = np.repeat(np.repeat(base, size // 4, 0), size // 4, 1)
    return np.stack([np.roll(tile, t, axis=1) for t in range(frames)])


def write_videos(folder: str | os.PathLike, n: int, frames: int = 24, size: int = 32, fps: int = 8) -> list[str]:
    """Write `n` small mp4 files `vid_{i}.mp4` into `folder`; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        path = os.path.join(os.fspath(folder), f"vid_{i:03d}.mp4")
        encode_video(path, moving_frames(i, frames, size), fps=fps)
        paths.append(path)
    return paths


def write_image(path: str | os.PathLike, seed: int = 0, size: int = 32) -> str:
    """Write one small jpg/png image (by extension) and return its path."""
    encode_image(path, moving_frames(seed, 1, size)[0])
    return os.fspath(path)


def write_csv(path: str | os.PathLike, rows: list[tuple[str, int]]) -> str:
    """Write an official-format list (`path label` lines)."""
    with open(path, "w") as f:
        f.write("".join(f"{p} {lab}\n" for p, lab in rows))
    return os.fspath(path)


def write_bad_inputs(folder: str | os.PathLike, good_video: str) -> dict[str, str]:
    """One file per kind of bad input: zero-byte, truncated, non-video, missing, too short (1 fps), no video stream."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    out = {}
    out["zero_byte"] = os.path.join(folder, "zero.mp4")
    open(out["zero_byte"], "wb").close()
    data = Path(good_video).read_bytes()
    out["truncated"] = os.path.join(folder, "truncated.mp4")
    with open(out["truncated"], "wb") as f:
        f.write(data[: len(data) // 3])
    out["non_video"] = os.path.join(folder, "text.mp4")
    with open(out["non_video"], "w") as f:
        f.write("this is not a video\n" * 50)
    out["missing"] = os.path.join(folder, "does_not_exist.mp4")
    out["too_short"] = os.path.join(folder, "slow.mp4")  # 1 fps: frame step 0 at fps=4 sampling
    encode_video(out["too_short"], moving_frames(5, 3), fps=1)
    out["undecodable"] = os.path.join(folder, "garbage_payload.mp4")
    with open(out["undecodable"], "wb") as f:  # an mp4 'ftyp' box followed by garbage
        f.write(data[:32] + np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return out
