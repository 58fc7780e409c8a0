"""Clip index sampling against references written from the spec formulas (data.md §2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jepa.data.errors import BadSampleError
from jepa.data.sampling import ClipSampling, frame_step_for, sample_clip_indices


def window_reference(start: int, clip_len: int, fpc: int) -> np.ndarray:
    """Spec QUIRK: positions start + floor(k * clip_len / (fpc - 1)), last one clipped to start + clip_len - 1."""
    k = np.arange(fpc)
    return np.minimum(start + (k * clip_len) // (fpc - 1), start + clip_len - 1)


def short_reference(length: int, fstp: int, fpc: int, clip_to: int) -> np.ndarray:
    """Short segment: n = length // fstp points spread over [0, length], padded with `length`, clipped to `clip_to`."""
    n = length // fstp
    spread = [math.floor(k * length / (n - 1)) if n > 1 else 0 for k in range(n)]
    return np.minimum(np.array(spread + [length] * (fpc - n)), clip_to)


@pytest.mark.parametrize(("video_fps", "fps", "expected"), [(30.0, 4, 7), (25.0, 4, 6), (24.0, 4, 6), (29.97, 4, 7)])
def test_fps_mode_step_uses_ceil_of_average_fps(video_fps: float, fps: int, expected: int) -> None:
    assert frame_step_for(ClipSampling(16, fps=fps), video_fps) == expected


def test_duration_and_frame_step_modes() -> None:
    assert frame_step_for(ClipSampling(16, duration=2.0), 30.0) == int(2.0 * 30 / 16)  # 3
    assert frame_step_for(ClipSampling(16, duration=2.0), 29.5) == 3  # ceil(29.5) = 30
    assert frame_step_for(ClipSampling(16, frame_step=4), 1000.0) == 4


def test_fpc16_fstp4_example_is_floor_k_64_over_15() -> None:
    sampling = ClipSampling(16, frame_step=4, random_clip_sampling=False)
    (idx,) = sample_clip_indices(sampling, 300, 30.0, np.random.default_rng(0))
    expected = [math.floor(k * 64 / 15) for k in range(15)] + [63]
    assert idx.dtype == np.int64
    assert idx.tolist() == expected
    assert idx[1] - idx[0] == 4 and idx[2] == 8 and idx[4] == 17  # spacing 64/15 > 4


@pytest.mark.parametrize("fps_mode", [True, False])
def test_random_window_matches_reference(fps_mode: bool) -> None:
    sampling = ClipSampling(16, fps=4) if fps_mode else ClipSampling(16, frame_step=4)
    fstp = 7 if fps_mode else 4
    clip_len, length = 16 * fstp, 500
    for seed in range(20):
        (idx,) = sample_clip_indices(sampling, length, 30.0, np.random.default_rng(seed))
        end = int(np.random.default_rng(seed).integers(clip_len, length))  # randint(clip_len, P - 1) inclusive
        np.testing.assert_array_equal(idx, window_reference(end - clip_len, clip_len, 16))


def test_random_end_upper_bound_is_p_minus_1_inclusive() -> None:
    sampling = ClipSampling(4, frame_step=1)
    rng = np.random.default_rng(0)
    ends = {int(sample_clip_indices(sampling, 6, 30.0, rng)[0][-1]) + 1 for _ in range(200)}  # clip_len 4, P 6
    assert ends == {4, 5}  # end in {clip_len, P - 1}; never P


def test_segments_offset_by_partition_length() -> None:
    sampling = ClipSampling(16, frame_step=2, num_clips=3, random_clip_sampling=False)
    clips = sample_clip_indices(sampling, 601, 30.0, np.random.default_rng(0))
    partition = 601 // 3
    assert len(clips) == 3
    for i, idx in enumerate(clips):
        np.testing.assert_array_equal(idx, window_reference(0, 32, 16) + i * partition)


def test_random_segments_stay_inside_their_partition() -> None:
    sampling = ClipSampling(8, frame_step=3, num_clips=4)
    rng = np.random.default_rng(1)
    for _ in range(50):
        for i, idx in enumerate(sample_clip_indices(sampling, 400, 30.0, rng)):
            assert 100 * i <= idx.min() and idx.max() < 100 * (i + 1)


def test_short_video_without_overlap_repeats_last_frame() -> None:
    sampling = ClipSampling(16, frame_step=4)  # clip_len 64 > 40 frames
    (idx,) = sample_clip_indices(sampling, 40, 30.0, np.random.default_rng(0))
    np.testing.assert_array_equal(idx, short_reference(40, 4, 16, 39))
    assert idx[-6:].tolist() == [39] * 6 and idx[0] == 0 and idx[1] == 4  # floor(40/9) = 4


def test_short_segments_without_overlap_offset_by_partition() -> None:
    sampling = ClipSampling(16, frame_step=4, num_clips=2)
    clips = sample_clip_indices(sampling, 100, 30.0, np.random.default_rng(0))  # P = 50 <= 64
    np.testing.assert_array_equal(clips[0], short_reference(50, 4, 16, 49))
    np.testing.assert_array_equal(clips[1], short_reference(50, 4, 16, 49) + 50)


def test_short_video_with_overlap_shifts_windows_over_the_video() -> None:
    sampling = ClipSampling(16, frame_step=4, num_clips=2, allow_clip_overlap=True)
    clips = sample_clip_indices(sampling, 100, 30.0, np.random.default_rng(0))  # P 50 <= clip_len 64 < L 100
    base = short_reference(63, 4, 16, 62)  # s = min(64, 100) - 1 = 63, 63 // 4 = 15 points
    np.testing.assert_array_equal(clips[0], base)
    np.testing.assert_array_equal(clips[1], base + (100 - 64) // 1)


def test_short_video_with_overlap_shorter_than_a_clip_has_no_shift() -> None:
    sampling = ClipSampling(16, frame_step=4, num_clips=3, allow_clip_overlap=True)
    clips = sample_clip_indices(sampling, 40, 30.0, np.random.default_rng(0))
    base = short_reference(39, 4, 16, 38)
    for idx in clips:
        np.testing.assert_array_equal(idx, base)


def test_fps_too_low_raises_bad_sample() -> None:
    with pytest.raises(BadSampleError, match="frame step is 0") as info:
        sample_clip_indices(ClipSampling(16, fps=4), 300, 3.0, np.random.default_rng(0), path="/v/slow.mp4")
    assert info.value.path == "/v/slow.mp4"


def test_too_short_for_segments_raises_bad_sample() -> None:
    with pytest.raises(BadSampleError, match="too short"):
        sample_clip_indices(ClipSampling(4, frame_step=1, num_clips=3), 2, 30.0, np.random.default_rng(0))
    with pytest.raises(BadSampleError, match="too short"):
        sample_clip_indices(ClipSampling(4, frame_step=1, allow_clip_overlap=True), 1, 30.0, np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"fps": 4, "frame_step": 2}, {"fps": 4, "duration": 2.0}, {"fps": 0}, {"frame_step": 0}, {"duration": -1.0}],
)
def test_sampling_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="ClipSampling"):
        ClipSampling(16, **kwargs)


def test_indices_always_in_range() -> None:
    rng = np.random.default_rng(3)
    for length in [1, 2, 5, 16, 63, 64, 65, 200]:
        for overlap in [False, True]:
            for num_clips in [1, 2]:
                sampling = ClipSampling(16, frame_step=4, num_clips=num_clips, allow_clip_overlap=overlap)
                try:
                    clips = sample_clip_indices(sampling, length, 30.0, rng)
                except BadSampleError:
                    assert length < 2 or length < num_clips
                    continue
                for idx in clips:
                    assert idx.shape == (16,) and idx.min() >= 0 and idx.max() < length
