"""Video and image decoding with PyAV: probe a file, decode a set of frames by index.

Frame indices are positions in presentation order (frame 0 is the first displayed frame), the convention of decord
used by the official code. :func:`decode_frames` decodes only what it needs:

1. **Frame table.** For containers with a sample index (mp4 / mov / most mkv with cues), PyAV exposes the demuxer's
   index entries (``stream.index_entries``, one per packet, in decode order, timestamps = DTS). Entry ``j`` that is
   a keyframe starts a group of pictures whose first displayed frame has presentation index ``j``: in a closed GOP
   (the libx264 default, and the rule for IDR frames) no frame before a keyframe in decode order is displayed after
   it and vice versa. So "keyframe at or before frame ``i``" is a binary search over the keyframe positions, exact
   for variable-frame-rate (VFR) streams too, without relying on timestamps being regular. The frame count is the
   number of non-discarded entries (exact).
2. **Seek.** ``container.seek(keyframe_dts, stream=video, backward=True)`` lands on that keyframe; the first packet
   read afterwards is identified by its DTS in the table, which gives the presentation index of the first decoded
   frame. Runs of wanted frames far apart (several clips) seek again when a later keyframe lies past what was
   already decoded.
3. **Counting.** After the seek point, decoded frames come out in presentation order. Each output frame's index is
   the start index plus the number of packet PTS values seen since the seek that are ``<=`` the frame's PTS; this
   stays correct if the decoder drops a frame (its PTS is still counted).
4. **No index** (raw streams, mkv without cues): the same walk, with the start index estimated from the first
   packet's PTS as ``round((pts - start_time) * time_base * average_rate)`` (exact for constant frame rate), seek
   positions estimated the same way, and the frame count taken from ``stream.frames`` or, when the container does
   not store it, ``round(duration * average_rate)``. With such estimated counts a request past the real last frame
   returns the last decoded frame instead of failing.

Decoding stops after the last wanted frame. Frames are converted to RGB (``rgb24``: grayscale, alpha and any YUV
layout) and rotated by the display-matrix rotation stored in the stream (phone videos), so the output is what a player
shows. Images (jpg / jpeg / png, detected by extension or, for bytes, by the demuxer that recognised them) are
decoded by FFmpeg's image demuxers as a one-frame video; no PIL needed. EXIF orientation of images is not applied.
"""

from __future__ import annotations

import bisect
import heapq
import io
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import av
import numpy as np
import torch

from jepa.data.errors import BadSampleError

__all__ = ["IMAGE_EXTENSIONS", "VideoInfo", "decode_frames", "is_image_path", "probe_video"]

Source = str | os.PathLike | bytes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# FFmpeg demuxers that read a single still image.
_IMAGE_FORMATS = ("image2", "jpeg_pipe", "png_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif_pipe")


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about its first video stream.

    Attributes:
        num_frames: frames in presentation order (exact from the sample index when there is one; see module doc).
        fps: average frame rate (0.0 for images).
        duration: seconds (0.0 for images).
        width, height: size of the decoded frames **after** rotation (what :func:`decode_frames` returns).
        rotation: counter-clockwise degrees applied to the coded frames for display: 0, 90, 180 or 270.
        is_image: a still image read as a one-frame video.
    """

    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    rotation: int
    is_image: bool


def is_image_path(path: str | os.PathLike) -> bool:
    """True for the image extensions of the official CSV loader (jpg / jpeg / png, any case)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def _describe(source: Source) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<bytes: {len(source)}>"
    return os.fspath(source)


@contextmanager
def _open(source: Source) -> Iterator[av.container.InputContainer]:
    """Open ``source`` for reading; always closes the container. Raises BadSampleError for unreadable inputs."""
    name = _describe(source)
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise BadSampleError(name, "empty input (0 bytes); expected an encoded video or image")
        target: str | io.BytesIO = io.BytesIO(bytes(source))
    else:
        target = os.fspath(source)
        if not os.path.exists(target):
            raise BadSampleError(name, "file not found")
        if os.path.isdir(target):
            raise BadSampleError(name, "is a directory; expected a video or image file")
        if os.path.getsize(target) == 0:
            raise BadSampleError(name, "empty file (0 bytes); expected an encoded video or image")
    try:
        container = av.open(target, mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        raise BadSampleError(name, f"cannot open as a video or image ({type(err).__name__}: {err})") from err
    try:
        yield container
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer, name: str, threads: int) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise BadSampleError(name, f"no video stream (container format {container.format.name!r})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise BadSampleError(name, f"no decoder for the video codec of format {container.format.name!r}")
    # Frame + slice threading; thread_count 0 lets FFmpeg pick one thread per core.
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = max(0, int(threads))
    return stream


def _is_image_container(container: av.container.InputContainer, source: Source) -> bool:
    names = set(container.format.name.split(","))
    if names & set(_IMAGE_FORMATS):
        return True
    return not isinstance(source, bytes | bytearray | memoryview) and is_image_path(source)


def _average_fps(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return 0.0


def _rotation_k(frame: av.VideoFrame) -> int:
    """Number of counter-clockwise quarter turns from the frame's display matrix (0..3)."""
    rotation = frame.rotation
    if not rotation or not math.isfinite(rotation):
        return 0
    return int(round(rotation / 90.0)) % 4


def _to_rgb(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB, rotated for display. ``size`` = coded (width, height) to rescale odd frames to."""
    if size is not None and (frame.width, frame.height) != size:
        array = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
    else:
        array = frame.to_ndarray(format="rgb24")
    k = _rotation_k(frame)
    if k:
        array = np.ascontiguousarray(np.rot90(array, k))  # rot90 with k > 0 turns counter-clockwise
    return array


@dataclass
class _FrameTable:
    """Presentation positions of keyframes (exact, from the index) or a constant-frame-rate estimate."""

    exact: bool
    num_frames: int
    key_pos: list[int]  # sorted presentation indices of keyframes (exact mode)
    key_dts: list[int]  # matching DTS, stream time base
    dts_to_pos: dict[int, int]
    start_pts: int
    ticks_per_frame: float  # stream time-base ticks per frame (estimate mode)
    pts_offset: int = 0  # first PTS - first DTS (B-frame reordering delay), stream time base

    @classmethod
    def build(cls, stream: av.video.stream.VideoStream) -> _FrameTable:
        fps = _average_fps(stream)
        time_base = stream.time_base
        start_pts = stream.start_time if stream.start_time is not None else 0
        ticks = float(1 / (time_base * fps)) if (time_base and fps > 0) else 0.0
        key_pos: list[int] = []
        key_dts: list[int] = []
        pos = 0
        for entry in stream.index_entries:
            if entry.is_discard:
                continue
            if entry.is_keyframe:
                key_pos.append(pos)
                key_dts.append(entry.timestamp)
            pos += 1
        # The mov/mp4 demuxer builds its index from the complete sample table; other demuxers (Matroska cues, ...)
        # may list only some packets, which is usable only if it matches the stored frame count.
        complete = "mov" in stream.container.format.name.split(",") or (stream.frames > 0 and pos == stream.frames)
        if complete and pos > 0 and key_pos and key_pos[0] == 0:
            offset = max(0, start_pts - key_dts[0])
            return cls(True, pos, key_pos, key_dts, dict(zip(key_dts, key_pos, strict=True)), start_pts, ticks, offset)
        # No usable sample index: estimated count and positions.
        if stream.frames and stream.frames > 0:
            count = int(stream.frames)
        elif stream.duration is not None and time_base and fps > 0:
            count = int(round(float(stream.duration * time_base) * fps))
        elif stream.container is not None and stream.container.duration and fps > 0:
            count = int(round(stream.container.duration / av.time_base * fps))
        else:
            count = 0
        return cls(False, count, [0], [start_pts], {}, start_pts, ticks)

    def seek_point(self, index: int) -> tuple[int, int]:
        """(timestamp to seek to, presentation index of the keyframe expected there) for frame ``index``."""
        if self.exact:
            j = bisect.bisect_right(self.key_pos, index) - 1
            return self.key_dts[j], self.key_pos[j]
        # Estimate: seek to the frame's timestamp, the demuxer goes back to the keyframe before it. Its position
        # becomes known from the first packet's PTS only, so report 0 ("unknown, at most index").
        return self.start_pts + int(index * self.ticks_per_frame), 0

    def start_position(self, dts: int | None, pts: int | None) -> int | None:
        if self.exact and dts is not None and dts in self.dts_to_pos:
            return self.dts_to_pos[dts]
        if pts is not None and self.ticks_per_frame > 0:
            return max(0, int(round((pts - self.start_pts) / self.ticks_per_frame)))
        return None


def _seek(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    table: _FrameTable,
    seek: tuple[int, int],
    name: str,
) -> tuple[Iterator[av.Packet], int]:
    """Seek to the keyframe for ``seek = (timestamp, target index)``; returns (packets from there, start index).

    Demuxers compare the seek timestamp with presentation times (the mov demuxer shifts its DTS index by the
    reordering delay), so the keyframe's DTS plus the stream's initial PTS-DTS offset is tried first; if that lands
    past the target (unusual reordering) the bare DTS is tried, then the start of the file.
    """
    ts, target = seek
    candidates: list[int | None] = [ts + table.pts_offset, ts] if table.pts_offset else [ts]
    for candidate in [*candidates, None]:
        if candidate is None:
            container.seek(0, backward=True)  # start of the file (AV_TIME_BASE units, any stream)
        else:
            container.seek(candidate, stream=stream, backward=True, any_frame=False)
        packets = container.demux(stream)
        first = next((p for p in packets if p.size), None)
        if first is None:
            continue
        pos = 0 if candidate is None else table.start_position(first.dts, first.pts)
        if pos is None:
            raise BadSampleError(name, "cannot locate the frame index after seeking (no timestamps)")
        if not table.exact or pos <= target:
            return itertools.chain([first], packets), pos
    raise BadSampleError(name, f"seeking for frame {target} found no packets")


def _iter_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    table: _FrameTable,
    seek: tuple[int, int] | None,
    name: str,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield ``(presentation index, frame)`` from the beginning (``seek=None``) or from the keyframe before frame
    ``target`` (``seek = (keyframe timestamp, target)``)."""
    if seek is None:
        packets: Iterator[av.Packet] = container.demux(stream)
        pos = 0
    else:
        packets, pos = _seek(container, stream, table, seek, name)
    pending_pts: list[int] = []  # PTS of packets read since the seek and not yet matched to an output frame
    for packet in packets:
        if packet.size and packet.pts is not None:
            heapq.heappush(pending_pts, packet.pts)
        for frame in packet.decode():
            count = 0
            if frame.pts is not None:
                while pending_pts and pending_pts[0] <= frame.pts:
                    heapq.heappop(pending_pts)
                    count += 1
            elif pending_pts:
                heapq.heappop(pending_pts)
                count = 1
            count = max(count, 1)  # a frame whose packet had no PTS still takes one position
            pos += count
            yield pos - 1, frame


def _decode_wanted(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    table: _FrameTable,
    wanted: list[int],
    name: str,
) -> dict[int, np.ndarray]:
    """Decode the sorted unique indices ``wanted``; returns index -> (H, W, 3) RGB array.

    With an estimated table (no sample index) a target that the walk steps over or that lies past the real end gets
    the nearest decoded frame instead (see module doc).
    """
    wanted_set = set(wanted)
    got: dict[int, np.ndarray] = {}
    frames: Iterator[tuple[int, av.VideoFrame]] | None = None
    last = -1  # presentation index of the last frame produced by `frames`
    last_raw: av.VideoFrame | None = None
    coded_size: tuple[int, int] | None = None
    max_gap = 2 * max(1.0, _average_fps(stream))  # estimate mode: decode gaps shorter than ~2 s instead of seeking
    for target in wanted:
        if target in got:
            continue
        seek_ts, key_pos = table.seek_point(target)
        if table.exact:
            if frames is None:
                frames = _iter_frames(container, stream, table, None if key_pos == 0 else (seek_ts, target), name)
            elif key_pos > last + 1:  # a keyframe lies past what was decoded: jump there instead of decoding the gap
                frames = _iter_frames(container, stream, table, (seek_ts, target), name)
        elif frames is None:
            frames = _iter_frames(container, stream, table, None if target < max_gap else (seek_ts, target), name)
        elif target - last > max_gap:
            frames = _iter_frames(container, stream, table, (seek_ts, target), name)
        for pos, frame in frames:
            last, last_raw = pos, frame
            if coded_size is None:
                coded_size = (frame.width, frame.height)
            if pos in wanted_set and pos not in got:
                got[pos] = _to_rgb(frame, coded_size)
            if pos >= target:
                if target not in got and not table.exact:
                    got[target] = _to_rgb(frame, coded_size)  # estimated positions stepped over the target
                break
        else:  # stream ended before the target
            if not table.exact and last_raw is not None:
                got[target] = _to_rgb(last_raw, coded_size)  # estimated frame count was too high
    return got


def decode_frames(source: Source, indices: Sequence[int], *, threads: int = 0) -> torch.Tensor:
    """Decode frames by presentation index.

    Args:
        source: a file path or the encoded bytes of a video (any FFmpeg container/codec) or image (jpg / png).
        indices: frame indices in ``[0, num_frames)``, any order, duplicates allowed. An image has one frame
            (index 0); ``decode_frames(image, [0] * 16)`` is a static 16-frame clip.
        threads: decoder threads; 0 lets FFmpeg choose (one per core).

    Returns:
        ``(len(indices), H, W, 3)`` uint8 RGB, rows in the order of ``indices``; ``H, W`` after display rotation.

    Raises:
        BadSampleError: missing / empty / non-video / undecodable / truncated input, or an index past the end.
        ValueError: empty or negative ``indices`` (a caller bug, not a bad sample).
    """
    order = [int(i) for i in indices]
    if not order:
        raise ValueError("decode_frames: indices must be non-empty")
    if min(order) < 0:
        raise ValueError(f"decode_frames: indices must be >= 0, got {min(order)}")
    name = _describe(source)
    wanted = sorted(set(order))
    try:
        with _open(source) as container:
            stream = _video_stream(container, name, threads)
            if _is_image_container(container, source):
                if wanted[-1] > 0:
                    raise BadSampleError(name, f"frame index {wanted[-1]} requested from an image (1 frame)")
                image = next(_iter_frames(container, stream, _FrameTable.build(stream), None, name), None)
                if image is None:
                    raise BadSampleError(name, "image could not be decoded")
                got = {0: _to_rgb(image[1])}
            else:
                table = _FrameTable.build(stream)
                if table.exact and wanted[-1] >= table.num_frames:
                    raise BadSampleError(
                        name, f"frame index {wanted[-1]} out of range: the video has {table.num_frames} frames"
                    )
                got = _decode_wanted(container, stream, table, wanted, name)
                missing = [i for i in wanted if i not in got]
                if missing:
                    raise BadSampleError(
                        name,
                        f"truncated or corrupt: frames {missing[:4]}{'...' if len(missing) > 4 else ''} could not "
                        f"be decoded (container reports {table.num_frames} frames)",
                    )
    except av.FFmpegError as err:
        raise BadSampleError(name, f"decoding failed ({type(err).__name__}: {err})") from err
    first = got[wanted[0]]
    if any(got[i].shape != first.shape for i in wanted):
        raise BadSampleError(name, f"frame size changes inside the video (first {first.shape}); expected constant")
    out = np.stack([got[i] for i in order])  # (N, H, W, 3)
    return torch.from_numpy(out)


def probe_video(source: Source) -> VideoInfo:
    """Read a video's (or image's) metadata and decode its first frame (to check it decodes and read its rotation).

    Args:
        source: a file path or encoded bytes.

    Returns:
        :class:`VideoInfo`.

    Raises:
        BadSampleError: missing / empty / non-video / undecodable input, or a video with no frames.
    """
    name = _describe(source)
    try:
        with _open(source) as container:
            stream = _video_stream(container, name, threads=1)
            is_image = _is_image_container(container, source)
            table = _FrameTable.build(stream)
            first = next(_iter_frames(container, stream, table, None, name), None)
            if first is None:
                raise BadSampleError(name, "no decodable frame")
            frame = first[1]
            k = _rotation_k(frame)
            width, height = (frame.height, frame.width) if k % 2 else (frame.width, frame.height)
            if is_image:
                return VideoInfo(1, 0.0, 0.0, width, height, 90 * k, True)
            fps = _average_fps(stream)
            if stream.duration is not None and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / av.time_base
            else:
                duration = table.num_frames / fps if fps > 0 else 0.0
            if table.num_frames < 1:
                raise BadSampleError(name, "the container reports no frames and no duration")
            return VideoInfo(table.num_frames, fps, duration, width, height, 90 * k, False)
    except av.FFmpegError as err:
        raise BadSampleError(name, f"decoding failed ({type(err).__name__}: {err})") from err
