"""Video–text instruction data and multiple-choice QA sets: JSONL files and WebDataset shards.

Records (one JSON object per line; relative media paths resolve against the JSONL file's folder):

- instruction: ``{"video": "clips/a.mp4", "conversations": [{"from": "human", "value": "<video>\\nWhat …?"},
  {"from": "gpt", "value": "…"}, …]}`` (LLaVA format; ``"image"`` instead of ``"video"`` for an image);
- multiple choice: ``{"video": …, "question": str, "options": [str, …], "answer": int | letter | option text}``;
  its training conversation is the :func:`jepa.mllm.evaluation.mc_prompt` prompt answered by the letter.

Frames: ``num_frames`` indices spread uniformly over the WHOLE video, the middle frame of each of ``num_frames`` equal
segments (``floor((i + 0.5) · L / num_frames)``), so repeated indices appear only when the video is shorter than
``num_frames``. An image is repeated ``num_frames`` times (a static clip; the paper found repetition ineffective for
images and tiles them instead — tiling is not implemented). Then :class:`jepa.data.EvalTransform` (resize, centre
crop, ImageNet normalisation) → ``(3, T, crop, crop)``.

Shards (``write_qa_shards``): per sample ``<key>.<ext>`` (the original media bytes) and ``<key>.json`` (the record
without its path, plus ``"ext"``); only JSON is parsed, nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from jepa.data.decoding import decode_frames, probe_video
from jepa.data.transforms import EvalTransform
from jepa.mllm.evaluation import answer_index, mc_prompt

__all__ = [
    "QAShardDataset",
    "VideoQADataModule",
    "VideoQAJsonlDataset",
    "collate_qa",
    "load_video_frames",
    "read_qa_jsonl",
    "record_conversations",
    "uniform_indices",
    "write_motion_qa",
    "write_qa_shards",
]


def uniform_indices(num_frames_video: int, num_frames: int) -> list[int]:
    """Middle frame of each of ``num_frames`` equal segments of a ``num_frames_video``-frame video."""
    if num_frames_video < 1 or num_frames < 1:
        raise ValueError(f"uniform_indices: need >= 1 frames, got video {num_frames_video}, wanted {num_frames}")
    return [min(int((i + 0.5) * num_frames_video / num_frames), num_frames_video - 1) for i in range(num_frames)]


def load_video_frames(source: str | os.PathLike | bytes, num_frames: int, crop_size: int) -> torch.Tensor:
    """Decode ``num_frames`` uniformly sampled frames (an image: repeated) → ``(3, T, crop, crop)`` float32."""
    info = probe_video(source)
    indices = [0] * num_frames if info.is_image else uniform_indices(info.num_frames, num_frames)
    frames = decode_frames(source, indices)  # (T, H, W, 3) uint8
    return EvalTransform(crop_size)(frames)[0]


def record_conversations(record: dict[str, Any], where: str) -> list[dict[str, str]]:
    """The training conversation of a record (instruction or multiple choice)."""
    if "conversations" in record:
        turns = record["conversations"]
        if not isinstance(turns, list) or not turns:
            raise ValueError(f"{where}: 'conversations' must be a non-empty list of turns")
        return turns
    if {"question", "options", "answer"} <= set(record):
        index = answer_index(record["answer"], record["options"], f"{where}: 'answer'")
        letter = chr(ord("A") + index)
        return [
            {"from": "human", "value": mc_prompt(record["question"], record["options"])},
            {"from": "gpt", "value": letter},
        ]
    raise ValueError(f"{where}: expected 'conversations' or 'question'/'options'/'answer', got keys {sorted(record)}")


def _check_record(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    record_conversations(record, where)
    if "options" in record:
        answer_index(record.get("answer", -1), record["options"], f"{where}: 'answer'")
    return record


def read_qa_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and validate a JSONL file; media paths are made absolute (relative to the file's folder)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_qa_jsonl: {path} does not exist")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: invalid JSON ({error})") from error
        record = _check_record(record, where)
        key = "video" if "video" in record else "image" if "image" in record else None
        if key is None:
            raise ValueError(f"{where}: expected a 'video' or 'image' path")
        media = Path(record[key])
        record = {**record, "media": str(media if media.is_absolute() else path.parent / media), "where": where}
        records.append(record)
    if not records:
        raise ValueError(f"read_qa_jsonl: {path} holds no records")
    return records


def _sample(record: dict[str, Any], video: torch.Tensor) -> dict[str, Any]:
    where = record.get("where", "record")
    sample = {"video": video, "conversations": record_conversations(record, where), "where": where}
    if "options" in record:
        sample["question"] = record["question"]
        sample["options"] = list(record["options"])
        sample["answer"] = answer_index(record["answer"], record["options"], where)
    return sample


class VideoQAJsonlDataset(Dataset):
    """Samples of a JSONL file: ``{"video": (3, T, crop, crop), "conversations", "where"`` [+ MC fields]``}``."""

    def __init__(self, path: str | os.PathLike, num_frames: int = 16, crop_size: int = 256) -> None:
        self.records = read_qa_jsonl(path)
        self.num_frames, self.crop_size = num_frames, crop_size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        return _sample(record, load_video_frames(record["media"], self.num_frames, self.crop_size))


def write_qa_shards(jsonl: str | os.PathLike, output_dir: str | os.PathLike, max_count: int = 1000) -> list[str]:
    """Pack a JSONL file and its media into tar shards ``qa-%06d.tar``; returns the shard paths."""
    from webdataset.writer import TarWriter

    records = read_qa_jsonl(jsonl)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards: list[str] = []
    writer = None
    try:
        for key, record in enumerate(records):
            if key % max_count == 0:
                if writer is not None:
                    writer.close()
                shards.append(str(out / f"qa-{len(shards):06d}.tar"))
                writer = TarWriter(shards[-1], encoder=False, mtime=0.0)
            ext = Path(record["media"]).suffix.lstrip(".").lower() or "mp4"
            meta = {k: v for k, v in record.items() if k not in ("video", "image", "media", "where")}
            meta["ext"] = ext
            data = Path(record["media"]).read_bytes()
            writer.write({"__key__": f"{key:08d}", ext: data, "json": json.dumps(meta).encode()})
    finally:
        if writer is not None:
            writer.close()
    return shards


class QAShardDataset(IterableDataset):
    """Stream samples from :func:`write_qa_shards` shards; shards are split over ranks × dataloader workers.

    Args:
        urls: shard paths or one brace pattern (``qa-{000000..000003}.tar``).
        num_frames, crop_size: as :class:`VideoQAJsonlDataset`.
        rank, world_size: override ``torch.distributed`` (default: its values, or 0 / 1).
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        num_frames: int = 16,
        crop_size: int = 256,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        from jepa.data.shards import expand_shard_urls

        self.urls = expand_shard_urls(urls)
        self.num_frames, self.crop_size = num_frames, crop_size
        self.rank, self.world_size = rank, world_size

    def _my_urls(self) -> list[str]:
        rank, world = self.rank, self.world_size
        if rank is None or world is None:
            dist = torch.distributed
            initialised = dist.is_available() and dist.is_initialized()
            rank, world = (dist.get_rank(), dist.get_world_size()) if initialised else (0, 1)
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        reader, readers = rank * workers + worker, world * workers
        return self.urls[reader::readers]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for url in self._my_urls():
            members: dict[str, dict[str, bytes]] = {}
            with tarfile.open(url, mode="r") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, _, ext = member.name.partition(".")
                    file = tar.extractfile(member)
                    members.setdefault(key, {})[ext] = file.read() if file is not None else b""
            for key in sorted(members):
                parts = members[key]
                if "json" not in parts:
                    raise ValueError(f"{url}: sample {key} has no .json member")
                meta = json.loads(parts["json"])
                where = f"{url}:{key}"
                media = parts.get(meta.get("ext", "mp4"))
                if media is None:
                    raise ValueError(f"{where}: no .{meta.get('ext')} media member")
                video = load_video_frames(media, self.num_frames, self.crop_size)
                yield _sample({**_check_record(meta, where), "where": where}, video)


def collate_qa(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack videos ``(B, 3, T, H, W)``; keep conversations / questions / options as lists, answers ``(B,)``."""
    batch: dict[str, Any] = {
        "video": torch.stack([s["video"] for s in samples]),
        "conversations": [s["conversations"] for s in samples],
        "where": [s["where"] for s in samples],
    }
    if all("options" in s for s in samples):
        batch["question"] = [s["question"] for s in samples]
        batch["options"] = [s["options"] for s in samples]
        batch["answer"] = torch.tensor([s["answer"] for s in samples], dtype=torch.long)
    return batch


class VideoQADataModule(pl.LightningDataModule):
    """Video QA data for :class:`jepa.tasks.video_qa.VideoQATask`.

    Each split is a JSONL file or a shard pattern (anything containing ``.tar``). Validation/test files with
    ``options`` give multiple-choice accuracy; files with ``conversations`` give the answer loss.

    Args:
        train, val, test: the split sources (None: no such split).
        num_frames: frames sampled uniformly over the whole video.
        crop_size: output side of the centre crop.
        batch_size: per-device batch.
        num_workers: dataloader workers.
        seed: shuffling seed of the training JSONL.
    """

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        num_frames: int = 16,
        crop_size: int = 256,
        batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.sources = {"train": train, "val": val, "test": test}
        self.num_frames, self.crop_size = num_frames, crop_size
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    def dataset(self, split: str) -> Dataset | IterableDataset:
        """The dataset of ``split`` (``train`` / ``val`` / ``test``)."""
        source = self.sources.get(split)
        if source is None:
            raise ValueError(f"VideoQADataModule: no {split!r} source configured (set data.{split})")
        if ".tar" in source:
            return QAShardDataset(source, self.num_frames, self.crop_size)
        return VideoQAJsonlDataset(source, self.num_frames, self.crop_size)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        iterable = isinstance(dataset, IterableDataset)
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and not iterable,
            num_workers=self.num_workers,
            collate_fn=collate_qa,
            generator=generator if shuffle and not iterable else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


MOTION_QUESTION = "Which way does the object move?"
SWARM_QUESTION = "Which way do the squares move?"
MOTION_QA_SCENES = ("object", "swarm")


def write_motion_qa(
    output_dir: str | os.PathLike,
    train_per_class: int = 16,
    val_per_class: int = 8,
    motions: Sequence[str] = ("left", "right", "up", "down"),
    frames: int = 16,
    size: int = 64,
    fps: int = 8,
    seed: int = 0,
    shuffle_options: bool = False,
    speed: float | None = None,
    scene: str = "object",
) -> dict[str, str]:
    """Write a synthetic "which way does it move?" multiple-choice set from the synthetic renderers.

    Writes ``{split}/{motion}_{i:05d}.mp4`` and ``train.jsonl`` / ``val.jsonl`` in the multiple-choice format
    (options = ``motions``, in order unless ``shuffle_options``). Deterministic given the arguments.

    Scenes:

    * ``"object"`` (:data:`MOTION_QUESTION`): one object (:func:`jepa.data.synthetic.render_motion_clip`) with a
      random appearance and start position, so only the motion answers the question. ``speed`` (pixels / frame)
      fixes the speed of every video (None: the renderer's random default, 0.6–1.4).
    * ``"swarm"`` (:data:`SWARM_QUESTION`): the `swarm` videos of ``jepa data synth --kind swarm``
      (:func:`jepa.data.synthetic.render_swarm_clip`: eight light squares on a dark background, all translating one
      way, positions and sizes random), on which ``quickstart_swarm.yaml`` pretrains; ``motions`` must be among
      left / right / up / down. ``speed`` fixes the speed (None: the renderer's random 1–2 pixels / frame).

    Returns:
        ``{"train": path, "val": path}`` (splits with 0 videos are left out).
    """
    from jepa.data.encode import encode_video
    from jepa.data.synthetic import MotionSpec, render_motion_clip, render_swarm_clip

    if scene not in MOTION_QA_SCENES:
        raise ValueError(f"write_motion_qa: scene must be one of {MOTION_QA_SCENES}, got {scene!r}")
    question = SWARM_QUESTION if scene == "swarm" else MOTION_QUESTION
    root = Path(output_dir)
    paths: dict[str, str] = {}
    for split_id, (split, count) in enumerate((("train", train_per_class), ("val", val_per_class))):
        if count <= 0:
            continue
        (root / split).mkdir(parents=True, exist_ok=True)
        lines = []
        for label, motion in enumerate(motions):
            for i in range(count):
                rng = np.random.default_rng([seed, split_id, label, i])
                if scene == "swarm":
                    fixed = {} if speed is None else {"speed": (speed, speed)}
                    clip = render_swarm_clip(motion, rng, frames=frames, size=size, **fixed)
                else:
                    clip = render_motion_clip(MotionSpec(motion, frames=frames, speed=speed), rng, size=size)
                name = f"{split}/{motion}_{i:05d}.mp4"
                encode_video(root / name, clip, fps=fps)
                options = list(motions)
                if shuffle_options:
                    rng.shuffle(options)
                record = {"video": name, "question": question, "options": options,
                          "answer": options.index(motion)}  # fmt: skip
                lines.append(json.dumps(record))
        order = np.random.default_rng([seed, split_id]).permutation(len(lines))
        paths[split] = str(root / f"{split}.jsonl")
        Path(paths[split]).write_text("\n".join(lines[k] for k in order) + "\n")
    return paths
