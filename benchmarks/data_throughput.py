"""Clips per second for decode + pretraining transform of 16-frame clips (fps 4), one worker.

Compares ``jepa.data.clips.load_clips`` (seek to the keyframe before the clip, decode forward, stop after the last
frame) with the naive approach (decode from the start up to the last wanted frame), on 30 fps H.264 videos at 360p and
720p, 10 s and 5 min long. The videos are generated once (libx264 ``ultrafast``, default GOP of 250 frames, smooth
moving content) and cached.

    PYTHONPATH=. python benchmarks/data_throughput.py --cache-dir /tmp/jepa_bench --clips 12
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import numpy as np
import torch

from jepa.data.clips import load_clips
from jepa.data.sampling import ClipSampling, sample_clip_indices
from jepa.data.transforms import PretrainTransform

SIZES = {"360p": (640, 360), "720p": (1280, 720)}
LENGTHS = {"10s": 10, "5min": 300}


def make_video(path: Path, width: int, height: int, seconds: int, fps: int = 30) -> Path:
    """Low-complexity synthetic content: a gradient scrolling diagonally."""
    if path.exists():
        return path
    tmp = path.with_suffix(".part.mp4")
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x // 4) % 256, (y // 4) % 256, ((x + y) // 8) % 256], axis=-1).astype(np.uint8)
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * fps):
            frame = np.roll(base, (i * 2, i * 3), axis=(0, 1))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path


def naive_clip(path: Path, indices: np.ndarray) -> torch.Tensor:
    """Decode from the first frame up to the last wanted one, keep the wanted frames."""
    wanted = set(indices.tolist())
    last = int(indices.max())
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                frames[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    return torch.from_numpy(np.stack([frames[i] for i in indices.tolist()]))


def bench(path: Path, clips: int, naive: bool, seed: int = 0) -> float:
    """Seconds per clip (decode + transform)."""
    sampling = ClipSampling(16, fps=4)
    transform = PretrainTransform(crop_size=256)
    rng = np.random.default_rng(seed)
    num_frames = 0
    if naive:
        with av.open(str(path)) as container:
            num_frames = container.streams.video[0].frames
    start = time.perf_counter()
    for _ in range(clips):
        if naive:
            (indices,) = sample_clip_indices(sampling, num_frames, 30.0, rng)
            clip = naive_clip(path, indices)
        else:
            clip = load_clips(path, sampling, rng).clips[0]
        out = transform(clip, rng)
        assert out.shape == (3, 16, 256, 256)
    return (time.perf_counter() - start) / clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/jepa_bench"))
    parser.add_argument("--clips", type=int, default=12, help="clips timed per video and method")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, av {av.__version__}, torch threads 1, decoder threads auto, {args.clips} clips")
    rows = []
    for size_name, (w, h) in SIZES.items():
        per_length = {}
        for length_name, seconds in LENGTHS.items():
            t0 = time.perf_counter()
            path = make_video(args.cache_dir / f"{size_name}_{length_name}.mp4", w, h, seconds)
            made = time.perf_counter() - t0
            if made > 1:
                print(f"generated {path.name} in {made:.0f} s")
            bench(path, 1, naive=False)  # warm-up (page cache, allocator)
            seek = bench(path, args.clips, naive=False)
            naive = bench(path, args.clips, naive=True)
            per_length[length_name] = seek
            rows.append((size_name, length_name, seek, naive))
        rows.append((size_name, "5min/10s", per_length["5min"] / per_length["10s"], None))
    print(f"{'video':<14}{'jepa clips/s':>14}{'ms/clip':>10}{'naive clips/s':>15}{'ms/clip':>10}{'speed-up':>10}")
    for size_name, length_name, seek, naive in rows:
        if naive is None:
            print(f"{size_name + ' ' + length_name:<14}{'':>14}{'':>10}{'':>15}{'':>10}  jepa cost ratio {seek:.2f}x")
            continue
        print(
            f"{size_name + ' ' + length_name:<14}{1 / seek:>14.2f}{1000 * seek:>10.0f}{1 / naive:>15.2f}"
            f"{1000 * naive:>10.0f}{naive / seek:>9.1f}x"
        )


if __name__ == "__main__":
    main()
