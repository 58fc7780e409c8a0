"""Clip indices of the anticipation sampler, computed here from the spec formulas (anticipation.md §3)."""

from __future__ import annotations

import numpy as np
import pytest

from jepa.data.ek100 import anticipation_frame_indices


def spec_indices(start, stop, fps, at, ap, anchoring):
    fstp = int(fps / 8)
    nframes = 32 * fstp
    aframes = int(at * fps)
    if anchoring == "official":
        af = int(ap * start + (1 - ap) * stop - aframes)
    else:
        af = int((1 - ap) * start + ap * stop - aframes)
    return [max(0, f) for f in range(af - nframes, af, fstp)]


@pytest.mark.parametrize("anchoring", ["official", "standard"])
@pytest.mark.parametrize(
    ("start", "stop", "fps", "at", "ap"),
    [
        (1000, 1300, 50.0, 1.0, 0.0),
        (5000, 5600, 60.0, 1.75, 0.25),
        (40, 400, 50.0, 0.25, 0.1),
        (100, 130, 59.94, 1.0, 0.0),
    ],
)
def test_indices_match_spec(anchoring, start, stop, fps, at, ap) -> None:
    got = anticipation_frame_indices(start, stop, fps, at, ap, anchoring=anchoring)
    assert got.tolist() == spec_indices(start, stop, fps, at, ap, anchoring)
    assert len(got) == 32


def test_official_vs_standard_anchor_by_hand() -> None:
    # 50 fps: step 6, span 192 frames; at = 1 s = 50 frames; ap = 0.
    official = anticipation_frame_indices(1000, 1300, 50.0, 1.0, 0.0, anchoring="official")
    standard = anticipation_frame_indices(1000, 1300, 50.0, 1.0, 0.0, anchoring="standard")
    assert official[-1] == 1300 - 50 - 6 and official[0] == 1300 - 50 - 192  # ends 1 s before the segment END
    assert standard[-1] == 1000 - 50 - 6 and standard[0] == 1000 - 50 - 192  # ends 1 s before the segment START
    assert np.all(np.diff(official) == 6)


def test_negative_indices_repeat_first_frame_and_clamp_end() -> None:
    got = anticipation_frame_indices(10, 60, 8.0, 1.0, 0.0, frames_per_clip=8, anchoring="standard")
    assert got.tolist() == [0, 0, 0, 0, 0, 0, 0, 1]  # af = 10 - 8 = 2 → arange(-6, 2)
    clamped = anticipation_frame_indices(0, 100, 8.0, 0.0, 0.0, frames_per_clip=4, num_frames=98)
    assert clamped.tolist() == [96, 97, 97, 97]
