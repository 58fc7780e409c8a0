"""Typed functions behind `jepa data shards` and `jepa data synth` (their docstrings are the CLI help)."""

from __future__ import annotations

import json
import os

from jepa.data.stats import logger

__all__ = ["shards", "synth"]


def shards(
    input: str,
    output_dir: str,
    max_size_mb: float = 1024.0,
    max_count: int = 10000,
    prefix: str = "shard",
) -> None:
    """Pack videos / images into WebDataset tar shards holding the original compressed bytes + metadata JSON.

    Args:
        input: a CSV list (`path label` per line, or `::`-delimited), a `.npy` path list, or a folder
            (`root/<class>/<file>` with labels from the sorted class folders, or a flat folder with label 0).
        output_dir: where `<prefix>-000000.tar`, … and `sizes.json` (shard name → sample count) are written.
        max_size_mb: target maximum shard size in MiB.
        max_count: maximum samples per shard.
        prefix: shard file name prefix.
    """
    from jepa.data.shards import write_shards

    result = write_shards(input, output_dir, max_size_mb=max_size_mb, max_count=max_count, prefix=prefix)
    print(f"wrote {result.num_samples} samples in {len(result.shards)} shards: {result.pattern}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} bad inputs:")
        for path, reason in result.skipped:
            print(f"  {path}: {reason}")


def synth(
    output_dir: str,
    kind: str = "motion",
    videos_per_class: int = 8,
    val_videos_per_class: int = 2,
    frames: int = 32,
    size: int = 64,
    fps: int = 8,
    seed: int = 0,
    shards: bool = False,
) -> None:
    """Generate a deterministic synthetic video classification dataset (real H.264 mp4 files).

    Args:
        output_dir: receives `train/` and `val/` videos, `train.csv`, `val.csv` (official `path label` format,
            paths relative to the CSV) and `classes.json` (class name → label).
        kind: `motion` (left/right/up/down/cw/ccw: motion-only classes), `speed` (slow/fast), `occlusion`
            (front/behind a bar), `swarm` (left/right/up/down: squares all moving one way, fixed colours),
            `swarm_speed` (slow/fast: the swarm videos classed by speed, direction random) or `static`
            (class = colour × shape, no informative motion).
        videos_per_class: training videos per class; `val_videos_per_class` validation videos per class.
        frames: frames per video; size: frame height = width in pixels; fps: frame rate written in the files.
        seed: everything is a deterministic function of the arguments.
        shards: also write `shards/train` and `shards/val` WebDataset shards.
    """
    from jepa.data.synthetic import generate_synthetic_dataset

    result = generate_synthetic_dataset(
        output_dir,
        kind=kind,
        videos_per_class=videos_per_class,
        val_videos_per_class=val_videos_per_class,
        frames=frames,
        size=size,
        fps=fps,
        seed=seed,
    )
    if shards:
        from jepa.data.shards import write_shards

        for split, csv in result.csvs.items():
            written = write_shards(csv, os.path.join(result.root, "shards", split), max_count=max(16, videos_per_class))
            result.shards[split] = written.pattern
    with open(result.class_map) as f:
        num_classes = len(json.load(f))
    logger.info("synthetic %s dataset in %s", kind, result.root)
    print(f"wrote {kind} dataset with {num_classes} classes to {result.root}: {result.csvs} {result.shards}")
