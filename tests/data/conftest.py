"""Shared fixtures for the data tests: tiny videos and images encoded with PyAV into a session temp dir.

Every frame carries its own index in two flat blocks (top-left: ``16 * (i // 16)``, next to it:
``16 * (i % 16)``), so tests can read back which frame they got with :func:`frame_index_of`, robust to lossy coding.

Fixtures (all session-scoped paths):
- ``cfr_video``: 96x64, 30 fps, 90 frames, H.264 with B-frames, keyframe every 12 frames (mp4).
- ``vfr_video``: 96x64, 60 frames with irregular frame durations (mp4, time base 1/15360).
- ``rotated_video``: 96x64 coded, display rotation 90 degrees counter-clockwise (mp4), 20 frames.
- ``odd_size_video``: 75x53, yuv444p (mp4), 20 frames.
- ``gray_video``: 64x48 8-bit grayscale, FFV1 in Matroska, 20 frames.
- ``faststart_video``: like ``cfr_video`` with the index at the front (``movflags=+faststart``), for truncation.
- ``image_jpg``, ``image_png``: 33x21 still images (png with alpha).
- ``make_video``: the factory, ``make_video(path, num_frames=..., ...)``.
"""

from __future__ import annotations

import fractions
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import av
import numpy as np
import pytest


def index_frame(i: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` uint8 frame: a smooth gradient plus two 16-pixel blocks that encode ``i``."""
    y, x = np.mgrid[0:height, 0:width]
    base = ((x * 2 + y * 3 + 5 * i + seed) % 200 + 28).astype(np.uint8)
    frame = np.stack([base, base[::-1], np.roll(base, i, axis=1)], axis=-1)
    frame[:16, :16] = 16 * (i // 16)
    frame[:16, 16:32] = 16 * (i % 16)
    return frame


def frame_index_of(frame: np.ndarray) -> int:
    """Inverse of :func:`index_frame` on a decoded (possibly lossy) ``(H, W, 3)`` frame."""
    hi = float(np.asarray(frame[4:12, 4:12]).mean())
    lo = float(np.asarray(frame[4:12, 20:28]).mean())
    return int(round(hi / 16)) * 16 + int(round(lo / 16))


def make_video(
    path: Path,
    *,
    num_frames: int = 90,
    width: int = 96,
    height: int = 64,
    fps: int = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int = 12,
    bframes: int = 2,
    durations: Sequence[int] | None = None,
    rotation: int = 0,
    container_options: dict[str, str] | None = None,
    frame_fn: Callable[[int, int, int], np.ndarray] = index_frame,
) -> Path:
    """Encode a video with PyAV. ``durations`` (ticks of 1/15360 s per frame) makes a variable-frame-rate stream."""
    options = {}
    if codec == "libx264":
        options = {"g": str(gop), "bf": str(bframes), "preset": "veryfast", "crf": "12", "keyint_min": str(gop)}
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if durations is not None:
            stream.time_base = fractions.Fraction(1, 15360)
            stream.codec_context.time_base = fractions.Fraction(1, 15360)
        if rotation:
            stream.set_display_rotation(rotation)
        pts = 0
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(i, height, width), format="rgb24")
            if durations is not None:
                frame.pts, frame.time_base = pts, stream.time_base
                pts += durations[i % len(durations)]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def encode_image(codec: str, pix_fmt: str, frame: np.ndarray) -> bytes:
    """Encode one RGB frame as a still image (``codec`` "mjpeg" or "png")."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.height, ctx.width = frame.shape[:2]
    ctx.pix_fmt = pix_fmt
    ctx.time_base = fractions.Fraction(1, 25)
    rgb = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=pix_fmt)
    return b"".join(bytes(p) for p in ctx.encode(rgb)) + b"".join(bytes(p) for p in ctx.encode(None))


def decode_all_reference(source: Path | bytes) -> np.ndarray:
    """Independent reference: every frame of the first video stream, decoded from the start, ``(N, H, W, 3)``."""
    target = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with av.open(target) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def cfr_video(video_dir: Path) -> Path:
    return make_video(video_dir / "cfr.mp4")


@pytest.fixture(scope="session")
def faststart_video(video_dir: Path) -> Path:
    return make_video(video_dir / "faststart.mp4", container_options={"movflags": "+faststart"})


@pytest.fixture(scope="session")
def vfr_video(video_dir: Path) -> Path:
    # Frame durations 1/60, 1/60, 1/15 s ... : far from any constant rate.
    return make_video(video_dir / "vfr.mp4", num_frames=60, durations=(256, 256, 1024), gop=10)


@pytest.fixture(scope="session")
def rotated_video(video_dir: Path) -> Path:
    return make_video(video_dir / "rot90.mp4", num_frames=20, rotation=90)


@pytest.fixture(scope="session")
def odd_size_video(video_dir: Path) -> Path:
    return make_video(video_dir / "odd.mp4", num_frames=20, width=75, height=53, pix_fmt="yuv444p")


@pytest.fixture(scope="session")
def gray_video(video_dir: Path) -> Path:
    def gray_frame(i: int, height: int, width: int) -> np.ndarray:
        return np.repeat(index_frame(i, height, width)[..., :1], 3, axis=-1)  # equal channels: lossless in gray8

    return make_video(
        video_dir / "gray.mkv", num_frames=20, width=64, height=48, codec="ffv1", pix_fmt="gray", frame_fn=gray_frame
    )


@pytest.fixture(scope="session")
def image_jpg(video_dir: Path) -> Path:
    path = video_dir / "still.jpg"
    path.write_bytes(encode_image("mjpeg", "yuvj420p", index_frame(7, 21, 33)))
    return path


@pytest.fixture(scope="session")
def image_png(video_dir: Path) -> Path:
    path = video_dir / "still.png"
    path.write_bytes(encode_image("png", "rgba", index_frame(7, 21, 33)))
    return path


@pytest.fixture(name="make_video")
def make_video_fixture() -> Callable[..., Path]:
    return make_video
