"""Clip frame-index sampling, reproducing the official V-JEPA 2 ``loadvideo_decord`` rules (spec data.md §2).

The indices are pure arithmetic on the video length and frame rate, so they are computed before any decoding and
the decoder reads only the frames it needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from jepa.data.errors import BadSampleError

__all__ = ["ClipSampling", "frame_step_for", "sample_clip_indices"]


@dataclass
class ClipSampling:
    """How clips are cut from a video.

    Exactly one of ``fps``, ``frame_step`` and ``duration`` sets the step between sampled frames:

    - ``fps``: target frames per second; step ``ceil(video_fps) // fps`` (pretraining: 4).
    - ``frame_step``: a fixed step in frames (probes: 2 or 4).
    - ``duration``: seconds covered by a clip; step ``int(duration * ceil(video_fps) / frames_per_clip)``.

    Args:
        frames_per_clip: frames in each clip (``fpc``).
        num_clips: the video is split into this many equal segments, one clip per segment (probes:
            ``num_segments``; pretraining: 1).
        random_clip_sampling: random clip position inside each segment (official default, also for validation);
            ``False`` takes the first window of each segment.
        allow_clip_overlap: for segments shorter than a clip, sample overlapping windows spread over the whole video
            (probe evaluation) instead of repeating the last frame of the segment (pretraining).
    """

    frames_per_clip: int
    fps: float | None = None
    frame_step: int | None = None
    duration: float | None = None
    num_clips: int = 1
    random_clip_sampling: bool = True
    allow_clip_overlap: bool = False

    def __post_init__(self) -> None:
        modes = {"fps": self.fps, "frame_step": self.frame_step, "duration": self.duration}
        given = [name for name, value in modes.items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                f"ClipSampling: exactly one of fps / frame_step / duration must be set, got {given or 'none'}"
            )
        if self.frames_per_clip < 1:
            raise ValueError(f"ClipSampling: frames_per_clip must be >= 1, got {self.frames_per_clip}")
        if self.num_clips < 1:
            raise ValueError(f"ClipSampling: num_clips must be >= 1, got {self.num_clips}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"ClipSampling: fps must be > 0, got {self.fps}")
        if self.frame_step is not None and (int(self.frame_step) != self.frame_step or self.frame_step < 1):
            raise ValueError(f"ClipSampling: frame_step must be an integer >= 1, got {self.frame_step}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"ClipSampling: duration must be > 0 seconds, got {self.duration}")


def frame_step_for(sampling: ClipSampling, video_fps: float) -> int:
    """The step in frames between two sampled frames (spec data.md §2.1); may be 0 for too-low frame rates.

    ``video_fps`` is the container's average frame rate; the official code rounds it up (``ceil``) first.
    """
    if sampling.frame_step is not None:
        return int(sampling.frame_step)
    if not (video_fps > 0 and math.isfinite(video_fps)):
        return 0
    fps_int = math.ceil(video_fps)  # official: math.ceil(vr.get_avg_fps())
    if sampling.duration is not None:
        return int(sampling.duration * fps_int / sampling.frames_per_clip)
    return int(fps_int // sampling.fps)


def sample_clip_indices(
    sampling: ClipSampling,
    num_frames: int,
    video_fps: float,
    rng: np.random.Generator,
    *,
    path: str | None = None,
) -> list[np.ndarray]:
    """Frame indices of each clip, exactly as the official ``loadvideo_decord`` computes them.

    Args:
        sampling: the sampling rule.
        num_frames: ``L``, the number of frames of the video.
        video_fps: average frame rate of the video (used by the ``fps`` and ``duration`` modes).
        rng: random generator for the clip positions (replaces numpy's global RNG;
            ``rng.integers(clip_len, P)`` draws from ``[clip_len, P - 1]`` like ``np.random.randint``).
        path: named in errors.

    Returns:
        ``num_clips`` int64 arrays of ``frames_per_clip`` indices in ``[0, L)``.

    Raises:
        BadSampleError: step 0 (video frame rate below the requested fps / too short a duration: the official
            code fails an assertion) or a video too short to give a valid index (``L < num_clips``, or ``L < 2``
            with overlap).
    """
    fpc = sampling.frames_per_clip
    fstp = frame_step_for(sampling, video_fps)
    if fstp <= 0:
        raise BadSampleError(
            path, f"frame step is {fstp} (video fps {video_fps} too low for {sampling}); expected a step > 0"
        )
    clip_len = int(fpc * fstp)
    num_clips = sampling.num_clips
    partition_len = num_frames // num_clips
    if partition_len < 1:
        raise BadSampleError(path, f"video too short: {num_frames} frames for {num_clips} clip segment(s)")

    clips: list[np.ndarray] = []
    for i in range(num_clips):
        if partition_len > clip_len:
            # A random window of clip_len frames inside the segment; np.random.randint's upper bound is exclusive.
            end = clip_len
            if sampling.random_clip_sampling:
                end = int(rng.integers(clip_len, partition_len))
            start = end - clip_len
            # QUIRK (official): spacing clip_len / (fpc - 1), last index clipped to end - 1.
            idx = np.linspace(start, end, num=fpc)
            idx = np.clip(idx, start, end - 1).astype(np.int64)
            idx = idx + i * partition_len
        elif not sampling.allow_clip_overlap:
            # Short segment: spread over the segment, then repeat the last frame up to fpc frames.
            n = partition_len // fstp
            idx = np.linspace(0, partition_len, num=n)
            idx = np.concatenate((idx, np.ones(fpc - n) * partition_len))
            idx = np.clip(idx, 0, partition_len - 1).astype(np.int64)
            idx = idx + i * partition_len
        else:
            # Short segment, overlap allowed: windows of the whole video, shifted evenly over the clips.
            sample_len = min(clip_len, num_frames) - 1
            if sample_len < 1:
                raise BadSampleError(path, f"video too short: {num_frames} frame(s), need at least 2 with overlap")
            n = sample_len // fstp
            idx = np.linspace(0, sample_len, num=n)
            idx = np.concatenate((idx, np.ones(fpc - n) * sample_len))
            idx = np.clip(idx, 0, sample_len - 1).astype(np.int64)
            clip_step = 0
            if num_frames > clip_len:
                clip_step = (num_frames - clip_len) // (num_clips - 1)
            idx = idx + i * clip_step
        clips.append(idx)
    return clips
