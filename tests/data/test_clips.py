"""load_clips: one batched decode of the sampled indices, split per clip; images as static clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import frame_index_of

from jepa.data.clips import load_clips
from jepa.data.errors import BadSampleError
from jepa.data.sampling import ClipSampling, sample_clip_indices


@pytest.mark.parametrize("as_bytes", [False, True])
def test_clips_hold_the_sampled_frames(cfr_video: Path, as_bytes: bool) -> None:
    sampling = ClipSampling(8, frame_step=2, num_clips=2)
    source = cfr_video.read_bytes() if as_bytes else cfr_video
    sample = load_clips(source, sampling, np.random.default_rng(5))
    expected = sample_clip_indices(sampling, 90, 30.0, np.random.default_rng(5))
    assert len(sample.clips) == 2 and sample.info.num_frames == 90
    for clip, idx, exp in zip(sample.clips, sample.indices, expected, strict=True):
        np.testing.assert_array_equal(idx, exp)
        assert clip.shape == (8, 64, 96, 3) and clip.dtype == torch.uint8
        assert [frame_index_of(f) for f in clip.numpy()] == idx.tolist()


def test_fps_sampling_on_short_video_repeats_last_frame(cfr_video: Path) -> None:
    sample = load_clips(cfr_video, ClipSampling(16, fps=4), np.random.default_rng(0))  # 90 < 16 * 7 frames
    (idx,) = sample.indices
    assert idx[-1] == 89 and [frame_index_of(f) for f in sample.clips[0].numpy()] == idx.tolist()


def test_image_becomes_static_clip(image_png: Path) -> None:
    sample = load_clips(image_png, ClipSampling(16, fps=4), np.random.default_rng(0))
    (clip,) = sample.clips
    assert clip.shape == (16, 21, 33, 3) and bool((clip == clip[0]).all())
    np.testing.assert_array_equal(sample.indices[0], np.arange(16))
    assert sample.info.is_image


def test_too_low_fps_and_bad_files_raise(cfr_video: Path, tmp_path: Path) -> None:
    with pytest.raises(BadSampleError, match="frame step is 0") as info:
        load_clips(cfr_video, ClipSampling(4, fps=60), np.random.default_rng(0))  # 30 fps video
    assert info.value.path == str(cfr_video)
    with pytest.raises(BadSampleError, match="file not found"):
        load_clips(tmp_path / "missing.mp4", ClipSampling(4, fps=4), np.random.default_rng(0))
