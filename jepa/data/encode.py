"""Write real H.264 mp4 files (and JPEG/PNG images) from uint8 frame arrays with PyAV.

Used by the synthetic datasets (`jepa.data.synthetic`) and by tests that need genuine compressed inputs.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction

import av
import numpy as np

__all__ = ["encode_image", "encode_video", "encode_video_bytes"]


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected a (T, H, W, 3) uint8 array, got shape {frames.shape} dtype {frames.dtype}")
    if frames.shape[0] < 1:
        raise ValueError("frames: expected at least one frame, got T = 0")
    return frames


def _write(
    target: str | os.PathLike | io.BytesIO, frames: np.ndarray, fps: int, crf: int, preset: str, gop: int
) -> None:
    height, width = frames.shape[1:3]
    # yuv420p needs even sizes: pad the last row/column by edge replication, never crop content.
    ph, pw = height % 2, width % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    # bitexact: no creation time / library version in the headers
    with av.open(target, mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(int(fps), 1))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # Single-threaded encode (see encode_video on determinism).
        stream.options = {"crf": str(crf), "preset": preset, "g": str(gop), "threads": "1"}
        stream.codec_context.thread_count = 1
        stream.codec_context.time_base = Fraction(1, int(fps))
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, int(fps))  # explicit timestamps: no encoder-side guessing
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def encode_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 30,
    *,
    crf: int = 18,
    preset: str = "veryfast",
    gop: int = 16,
) -> None:
    """Encode `frames` `(T, H, W, 3)` uint8 RGB as an H.264 (libx264, yuv420p) mp4 at `path`.

    Odd sizes are padded by one replicated row/column (yuv420p needs even sizes). `gop` is the keyframe interval in
    frames; the encode is single-threaded with explicit timestamps. Equal inputs give byte-identical files on an idle
    machine, but two runs under heavy CPU load produced encodes that decode a few grey levels apart at object edges
    (cause not found), so do not rely on byte equality.
    """
    frames = _check_frames(frames)
    _write(os.fspath(path), frames, fps, crf, preset, gop)


def encode_video_bytes(
    frames: np.ndarray, fps: int = 30, *, crf: int = 18, preset: str = "veryfast", gop: int = 16
) -> bytes:
    """Same as `encode_video` but returns the mp4 file content as bytes."""
    frames = _check_frames(frames)
    buf = io.BytesIO()
    _write(buf, frames, fps, crf, preset, gop)
    return buf.getvalue()


def encode_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode one `(H, W, 3)` uint8 RGB image as JPEG (`.jpg`/`.jpeg`) or PNG (`.png`) with PyAV's image codecs."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected an (H, W, 3) uint8 array, got shape {image.shape} dtype {image.dtype}")
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in (".jpg", ".jpeg"):
        codec, pix_fmt, fmt = "mjpeg", "yuvj444p", "image2"
    elif ext == ".png":
        codec, pix_fmt, fmt = "png", "rgb24", "image2"
    else:
        raise ValueError(f"{path}: expected a .jpg, .jpeg or .png extension, got {ext!r}")
    with av.open(os.fspath(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=1)
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = pix_fmt
        if codec == "mjpeg":
            stream.options = {"qmin": "1", "qmax": "2"}
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in stream.encode(vf):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
