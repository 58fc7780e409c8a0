"""Load the clips of one video (or image): probe, sample indices, one batched decode, split (spec data.md §2)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from jepa.data.decoding import VideoInfo, decode_frames, probe_video
from jepa.data.sampling import ClipSampling, sample_clip_indices

__all__ = ["ClipSample", "load_clips"]


@dataclass
class ClipSample:
    """The clips cut from one sample.

    Attributes:
        clips: ``num_clips`` tensors ``(frames_per_clip, H, W, 3)`` uint8 RGB (one for images).
        indices: the frame indices of each clip, int64 arrays of ``frames_per_clip`` (``arange(fpc)`` for images).
        info: the probed metadata.
    """

    clips: list[torch.Tensor]
    indices: list[np.ndarray]
    info: VideoInfo


def load_clips(
    source: str | os.PathLike | bytes,
    sampling: ClipSampling,
    rng: np.random.Generator,
    *,
    threads: int = 0,
) -> ClipSample:
    """Sample and decode the clips of a video, or repeat an image ``frames_per_clip`` times.

    Args:
        source: file path or encoded bytes.
        sampling: clip sampling rule.
        rng: draws the clip positions.
        threads: decoder threads (0 = FFmpeg's choice).

    Returns:
        :class:`ClipSample`.

    Raises:
        BadSampleError: unreadable input or a video too short / too low fps for ``sampling``.
    """
    name = os.fspath(source) if not isinstance(source, bytes | bytearray | memoryview) else f"<bytes: {len(source)}>"
    info = probe_video(source)
    fpc = sampling.frames_per_clip
    if info.is_image:
        frame = decode_frames(source, [0], threads=threads)  # (1, H, W, 3)
        clip = frame.expand(fpc, -1, -1, -1).contiguous()  # (fpc, H, W, 3): a static video (spec §2.3)
        return ClipSample([clip], [np.arange(fpc, dtype=np.int64)], info)
    indices = sample_clip_indices(sampling, info.num_frames, info.fps, rng, path=name)
    frames = decode_frames(source, np.concatenate(indices), threads=threads)  # (num_clips * fpc, H, W, 3)
    clips = list(frames.split(fpc))  # num_clips x (fpc, H, W, 3)
    return ClipSample(clips, indices, info)
