"""Synthetic action-anticipation data: videos that are sequences of motion "actions" with a predictable successor.

Each video shows one object (random appearance, shape = the "noun") performing consecutive motions (the "verbs":
left / right / up / down / cw / ccw) rendered by :func:`jepa.data.synthetic.render_motion_sequence`. The next motion
follows the current one through a fixed cycle (``left → up → right → down → cw → ccw → left``) with probability
``predictability``, otherwise it is drawn uniformly; so the action after an observed clip can be anticipated from
the motion seen in it. Every segment is annotated in the "segments" CSV format of :mod:`jepa.data.ek100`
(``video,start_frame,stop_frame,verb_class,noun_class,verb,noun``), the files are real H.264 mp4 written at ``fps``.

With ``segment_frames = 2 · fps`` (2 s segments), anticipation time 1 s and the standard anchoring (clip ends 1 s
before the segment starts), a clip of ``fps`` frames (1 s) shows only the previous motion.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from jepa.data.encode import encode_video
from jepa.data.synthetic import SHAPES, MotionSpec, render_motion_sequence, sample_appearance

__all__ = ["NEXT_MOTION", "SYNTH_VERBS", "AnticipationSynthResult", "generate_anticipation_dataset"]

SYNTH_VERBS = ("left", "up", "right", "down", "cw", "ccw")
NEXT_MOTION = {verb: SYNTH_VERBS[(i + 1) % len(SYNTH_VERBS)] for i, verb in enumerate(SYNTH_VERBS)}


@dataclass
class AnticipationSynthResult:
    """Paths written by :func:`generate_anticipation_dataset`."""

    root: str
    train: str
    val: str


def _motion_sequence(rng: np.random.Generator, count: int, predictability: float) -> list[str]:
    motions = [SYNTH_VERBS[int(rng.integers(len(SYNTH_VERBS)))]]
    while len(motions) < count:
        if rng.uniform() < predictability:
            motions.append(NEXT_MOTION[motions[-1]])
        else:
            motions.append(SYNTH_VERBS[int(rng.integers(len(SYNTH_VERBS)))])
    return motions


def generate_anticipation_dataset(
    output_dir: str | os.PathLike[str],
    train_videos: int = 24,
    val_videos: int = 8,
    segments_per_video: int = 4,
    segment_frames: int = 16,
    size: int = 32,
    fps: int = 8,
    predictability: float = 1.0,
    shapes: tuple[str, ...] = SHAPES[:2],
    seed: int = 0,
) -> AnticipationSynthResult:
    """Write ``{train,val}/video_XXXXX.mp4`` and ``train.csv`` / ``val.csv`` (paths relative to ``output_dir``).

    Args:
        output_dir: created if needed.
        train_videos, val_videos: videos per split.
        segments_per_video: motions per video (each one annotated segment).
        segment_frames: frames per motion.
        size: frame side in pixels.
        fps: frame rate written in the files.
        predictability: probability that the next motion follows :data:`NEXT_MOTION`.
        shapes: object shapes (the nouns) drawn per video.
        seed: every video is drawn from a generator seeded by ``(seed, split, index)`` (deterministic output).
    """
    root = os.path.abspath(os.fspath(output_dir))
    paths = {}
    for split_id, (split, count) in enumerate((("train", train_videos), ("val", val_videos))):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        rows = []
        for index in range(count):
            rng = np.random.default_rng([seed, split_id, index])
            shape_id = int(rng.integers(len(shapes)))
            motions = _motion_sequence(rng, segments_per_video, predictability)
            appearance = sample_appearance(rng, size, shape=shapes[shape_id])
            frames, starts = render_motion_sequence(
                [MotionSpec(m, frames=segment_frames) for m in motions], rng, size=size, appearance=appearance
            )
            relative = os.path.join(split, f"video_{index:05d}.mp4")
            encode_video(os.path.join(root, relative), frames, fps=fps)
            for motion, start in zip(motions, starts, strict=True):
                verb_id = SYNTH_VERBS.index(motion)
                rows.append([relative, start, start + segment_frames - 1, verb_id, shape_id, motion, shapes[shape_id]])
        paths[split] = os.path.join(root, f"{split}.csv")
        with open(paths[split], "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video", "start_frame", "stop_frame", "verb_class", "noun_class", "verb", "noun"])
            writer.writerows(rows)
    return AnticipationSynthResult(root=root, train=paths["train"], val=paths["val"])
