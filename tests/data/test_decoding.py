"""Decoding: seek-based decode equals a full decode from the start; VFR, rotation, grayscale, odd sizes, images,
bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import decode_all_reference, frame_index_of

from jepa.data import decoding
from jepa.data.decoding import decode_frames, probe_video
from jepa.data.errors import BadSampleError


@pytest.mark.parametrize("as_bytes", [False, True])
def test_seek_decode_equals_full_decode(cfr_video: Path, as_bytes: bool) -> None:
    reference = decode_all_reference(cfr_video)  # (90, 64, 96, 3)
    source = cfr_video.read_bytes() if as_bytes else cfr_video
    rng = np.random.default_rng(0)
    index_sets = [[89], [0], [11, 12, 13], [35, 36, 84, 85, 89], [50, 2, 50, 77]]  # across keyframes (every 12)
    index_sets += [rng.integers(0, 90, size=int(rng.integers(1, 12))).tolist() for _ in range(10)]
    for indices in index_sets:
        out = decode_frames(source, indices)
        assert out.dtype == torch.uint8 and out.shape == (len(indices), 64, 96, 3)
        np.testing.assert_array_equal(out.numpy(), reference[indices], err_msg=f"indices {indices}")


def test_frames_carry_their_index(cfr_video: Path) -> None:
    out = decode_frames(cfr_video, [88, 3, 3, 47, 12])
    assert [frame_index_of(f) for f in out.numpy()] == [88, 3, 3, 47, 12]


def test_decode_seeks_instead_of_decoding_from_start(cfr_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    produced: list[int] = []
    original = decoding._iter_frames

    def counting(*args, **kwargs):
        for pos, frame in original(*args, **kwargs):
            produced.append(pos)
            yield pos, frame

    monkeypatch.setattr(decoding, "_iter_frames", counting)
    decode_frames(cfr_video, [86, 87])  # keyframes every 12 frames: starts at 84
    assert produced == [84, 85, 86, 87]
    produced.clear()
    decode_frames(cfr_video, [1, 61])  # two runs: from 0, then a seek to the keyframe at 60
    assert produced == [0, 1, 60, 61]


def test_vfr_video_indices_follow_presentation_order(vfr_video: Path) -> None:
    reference = decode_all_reference(vfr_video)
    info = probe_video(vfr_video)
    assert info.num_frames == len(reference) == 60
    rng = np.random.default_rng(1)
    for _ in range(10):
        indices = rng.integers(0, 60, size=6).tolist()
        out = decode_frames(vfr_video, indices).numpy()
        np.testing.assert_array_equal(out, reference[indices])
        assert [frame_index_of(f) for f in out] == indices


def test_probe_constant_rate_video(cfr_video: Path) -> None:
    info = probe_video(cfr_video)
    assert (info.num_frames, info.fps, info.width, info.height, info.rotation, info.is_image) == (
        90,
        30.0,
        96,
        64,
        0,
        False,
    )
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert probe_video(cfr_video.read_bytes()) == info


def test_rotation_metadata_is_applied(rotated_video: Path) -> None:
    info = probe_video(rotated_video)
    assert info.rotation == 90 and (info.width, info.height) == (64, 96)
    coded = decode_all_reference(rotated_video)  # (20, 64, 96, 3), not rotated
    out = decode_frames(rotated_video, [0, 13]).numpy()
    assert out.shape == (2, 96, 64, 3)
    np.testing.assert_array_equal(out, np.rot90(coded[[0, 13]], 1, axes=(1, 2)))
    # Counter-clockwise: the index blocks (coded rows 0-15, columns 0-31) end up in the bottom-left corner.
    hi_block = coded[13, 4:12, 4:12].mean()
    assert abs(out[1, -12:-4, 4:12].mean() - hi_block) < 3


def test_grayscale_becomes_rgb(gray_video: Path) -> None:
    out = decode_frames(gray_video, [19, 0, 7]).numpy()
    assert out.shape == (3, 48, 64, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert [frame_index_of(f) for f in out] == [19, 0, 7]
    assert probe_video(gray_video).num_frames == 20


def test_odd_size(odd_size_video: Path) -> None:
    info = probe_video(odd_size_video)
    assert (info.width, info.height, info.num_frames) == (75, 53, 20)
    out = decode_frames(odd_size_video, [5, 19])
    assert out.shape == (2, 53, 75, 3)
    np.testing.assert_array_equal(out.numpy(), decode_all_reference(odd_size_video)[[5, 19]])


@pytest.mark.parametrize("fixture", ["image_jpg", "image_png"])
def test_image_is_a_one_frame_video(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    info = probe_video(path)
    assert info.is_image and (info.num_frames, info.width, info.height) == (1, 33, 21)
    for source in (path, path.read_bytes()):
        out = decode_frames(source, [0] * 16)
        assert out.shape == (16, 21, 33, 3)
        assert bool((out == out[0]).all())
        assert frame_index_of(out[0].numpy()) == 7
    assert probe_video(path.read_bytes()).is_image  # detected from content, no extension
    with pytest.raises(BadSampleError, match="from an image"):
        decode_frames(path, [1])


def test_threads_do_not_change_output(cfr_video: Path) -> None:
    a = decode_frames(cfr_video, [5, 40, 70], threads=1)
    b = decode_frames(cfr_video, [5, 40, 70], threads=0)
    assert torch.equal(a, b)


def _assert_bad(source, match: str, path_part: str) -> None:
    with pytest.raises(BadSampleError, match=match) as info:
        decode_frames(source, [0, 5])
    assert path_part in info.value.path and info.value.reason
    assert str(info.value) == f"{info.value.path}: {info.value.reason}"


def test_missing_and_empty_files(tmp_path: Path) -> None:
    _assert_bad(tmp_path / "nope.mp4", "file not found", "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _assert_bad(empty, "0 bytes", "empty.mp4")
    _assert_bad(b"", "0 bytes", "<bytes: 0>")
    with pytest.raises(BadSampleError, match="file not found"):
        probe_video(tmp_path / "nope.mp4")


def test_non_video_inputs(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    _assert_bad(text, "cannot open", "notes.mp4")
    _assert_bad(bytes(range(256)) * 8, "cannot open|no video stream", "<bytes: 2048>")
    with pytest.raises(BadSampleError):
        probe_video(text)


def test_truncated_videos(cfr_video: Path, faststart_video: Path, tmp_path: Path) -> None:
    data = cfr_video.read_bytes()  # index (moov) at the end: truncation loses it
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    _assert_bad(cut, "cannot open", "cut.mp4")
    fast = faststart_video.read_bytes()  # index first: the table promises frames that are not there
    cut_fast = tmp_path / "cut_fast.mp4"
    cut_fast.write_bytes(fast[: len(fast) // 2])
    assert probe_video(cut_fast).num_frames == 90
    decode_frames(cut_fast, [0, 1])  # the beginning is intact
    with pytest.raises(BadSampleError, match="truncated or corrupt|decoding failed") as info:
        decode_frames(cut_fast, [10, 89])
    assert "cut_fast.mp4" in info.value.path


def test_index_out_of_range(cfr_video: Path) -> None:
    with pytest.raises(BadSampleError, match="out of range: the video has 90 frames"):
        decode_frames(cfr_video, [3, 90])
    with pytest.raises(ValueError, match="non-empty"):
        decode_frames(cfr_video, [])
    with pytest.raises(ValueError, match=">= 0"):
        decode_frames(cfr_video, [-1])


def test_bad_sample_error_pickles() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(BadSampleError("/a/b.mp4", "file not found")))
    assert (err.path, err.reason, str(err)) == ("/a/b.mp4", "file not found", "/a/b.mp4: file not found")
