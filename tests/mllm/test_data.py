"""Video QA data: uniform frame sampling, JSONL records and errors, shards round trip, collation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jepa.mllm.data import (
    MOTION_QUESTION,
    SWARM_QUESTION,
    QAShardDataset,
    VideoQADataModule,
    VideoQAJsonlDataset,
    read_qa_jsonl,
    uniform_indices,
    write_motion_qa,
    write_qa_shards,
)


def test_uniform_indices_cover_the_whole_video() -> None:
    assert uniform_indices(16, 8) == [1, 3, 5, 7, 9, 11, 13, 15]
    assert uniform_indices(100, 4) == [12, 37, 62, 87]
    assert uniform_indices(3, 6) == [0, 0, 1, 1, 2, 2]  # shorter than wanted: repeats, in order
    with pytest.raises(ValueError):
        uniform_indices(0, 4)


def test_motion_qa_records_and_samples(motion_qa: dict[str, str]) -> None:
    records = read_qa_jsonl(motion_qa["val"])
    assert len(records) == 4
    assert {r["options"][r["answer"]] for r in records} == {"left", "right", "up", "down"}
    assert all(r["question"] == MOTION_QUESTION and Path(r["media"]).is_file() for r in records)
    dataset = VideoQAJsonlDataset(motion_qa["val"], num_frames=8, crop_size=64)
    sample = dataset[0]
    assert sample["video"].shape == (3, 8, 64, 64) and sample["video"].dtype == torch.float32
    turns = sample["conversations"]
    assert turns[0]["from"] == "human" and "(A) left" in turns[0]["value"]
    assert turns[1] == {"from": "gpt", "value": "ABCD"[sample["answer"]]}


def test_swarm_motion_qa(tmp_path: Path) -> None:
    """The swarm scene: the pretraining videos of quickstart_swarm.yaml, asked about; the decoded frames move the
    way the answer says (mean brightness-weighted column / row of the squares shifts along the answer's axis)."""
    paths = write_motion_qa(tmp_path, train_per_class=1, val_per_class=0, frames=16, scene="swarm", speed=2.0)
    assert set(paths) == {"train"}
    records = read_qa_jsonl(paths["train"])
    assert all(r["question"] == SWARM_QUESTION and r["options"] == ["left", "right", "up", "down"] for r in records)
    dataset = VideoQAJsonlDataset(paths["train"], num_frames=8, crop_size=64)
    for index, record in enumerate(records):
        video = dataset[index]["video"][0]  # (8, 64, 64) first channel, normalised
        answer = record["options"][record["answer"]]
        axis = 2 if answer in ("left", "right") else 1  # columns move for left / right, rows for up / down
        profile = video.mean(dim=3 - axis)  # (8, 64): brightness along the moving axis
        sign = 1 if answer in ("right", "down") else -1
        # the profile of frame t+1 is frame t's rolled by the motion: ~2.14 frames apart x 2 px -> 4 or 5 px
        errors = {shift: (profile[1:] - profile[:-1].roll(sign * shift, dims=1)).abs().mean().item()
                  for shift in range(1, 8)}  # fmt: skip
        assert min(errors, key=errors.get) in (4, 5), (answer, errors)
    with pytest.raises(ValueError, match="scene must be one of"):
        write_motion_qa(tmp_path, train_per_class=1, val_per_class=0, scene="crowd")


def test_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"video": "a.mp4", "conversations": [{"from": "human", "value": "x"}]}) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: invalid JSON"):
        read_qa_jsonl(bad)
    bad.write_text(json.dumps({"video": "a.mp4", "question": "q", "options": ["x", "y"], "answer": "z"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: 'answer'"):
        read_qa_jsonl(bad)
    bad.write_text(json.dumps({"conversations": [{"from": "human", "value": "x"}]}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: expected a 'video' or 'image'"):
        read_qa_jsonl(bad)


def test_shards_round_trip_the_jsonl_samples(motion_qa: dict[str, str], tmp_path: Path) -> None:
    shards = write_qa_shards(motion_qa["val"], tmp_path / "shards", max_count=3)
    assert len(shards) == 2
    from_jsonl = VideoQAJsonlDataset(motion_qa["val"], num_frames=8, crop_size=64)
    from_shards = list(QAShardDataset(shards, num_frames=8, crop_size=64, rank=0, world_size=1))
    assert len(from_shards) == len(from_jsonl)
    for i, sample in enumerate(from_shards):
        expected = from_jsonl[i]
        torch.testing.assert_close(sample["video"], expected["video"])
        assert sample["conversations"] == expected["conversations"] and sample["answer"] == expected["answer"]
    # two ranks split the shards: each sample once
    halves = [list(QAShardDataset(shards, 8, 64, rank=r, world_size=2)) for r in range(2)]
    assert sorted(len(h) for h in halves) == [1, 3]


def test_datamodule_batches(motion_qa: dict[str, str]) -> None:
    module = VideoQADataModule(train=motion_qa["train"], val=motion_qa["val"], num_frames=8, crop_size=64, batch_size=3)
    batch = next(iter(module.val_dataloader()))
    assert batch["video"].shape == (3, 3, 8, 64, 64)
    assert batch["answer"].shape == (3,) and len(batch["options"]) == 3 and len(batch["conversations"]) == 3
    with pytest.raises(ValueError, match="data.test"):
        module.test_dataloader()
