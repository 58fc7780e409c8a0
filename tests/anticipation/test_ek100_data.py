"""EK100 annotations, official class remapping, samplers (exact-once and official) and the dataset."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import torch

from jepa.data.ek100 import (
    AnticipationDataset,
    ClassMapping,
    EK100DataModule,
    ExactOnceSampler,
    OfficialValSampler,
    build_class_mapping,
    ek100_video_path,
    read_annotations,
)
from jepa.data.transforms import EvalTransform, ProbeTrainTransform

EK_HEADER = ["narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "verb", "verb_class", "noun",
             "noun_class"]  # fmt: skip


def write_ek100(path: Path, rows: list[tuple[str, int, int, int, int]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EK_HEADER)
        for i, (vid, start, stop, verb, noun) in enumerate(rows):
            writer.writerow([f"{vid}_{i}", vid.split("_")[0], vid, start, stop, f"v{verb}", verb, f"n{noun}", noun])
    return path


def test_video_path_layouts() -> None:
    assert ek100_video_path("/base", "P01_11", 0) == "/base/P01/videos/P01_11.MP4"
    assert ek100_video_path("/base", "P01_11", 1) == "/base/P01/P01_11.MP4"


def test_read_ek100_both_layouts_and_skip_missing(tmp_path: Path, caplog) -> None:
    for fmt, folder in ((0, tmp_path / "b0" / "P01" / "videos"), (1, tmp_path / "b1" / "P01")):
        folder.mkdir(parents=True)
        (folder / "P01_01.MP4").write_bytes(b"x")
        csv_path = write_ek100(tmp_path / f"a{fmt}.csv", [("P01_01", 10, 20, 3, 7), ("P02_05", 1, 9, 1, 1)])
        with caplog.at_level(logging.WARNING):
            segments = read_annotations(csv_path, tmp_path / f"b{fmt}", file_format=fmt)
        assert [(s.video_id, s.start_frame, s.stop_frame, s.verb_class, s.noun_class) for s in segments] == [
            ("P01_01", 10, 20, 3, 7)
        ]
        assert segments[0].path == ek100_video_path(tmp_path / f"b{fmt}", "P01_01", fmt)
        assert "P02_05.MP4 not found" in caplog.text


def test_class_mapping_is_the_official_set_construction(tmp_path: Path) -> None:
    # Raw ids chosen so that set order differs from sorted order and from first-appearance order.
    rows = [("P01_01", i, i + 5, v, n) for i, (v, n) in enumerate([(97, 300), (8, 33), (40, 8), (8, 300), (97, 33),
                                                                    (8, 33), (1, 64), (72, 2)])]  # fmt: skip
    (tmp_path / "P01" / "videos").mkdir(parents=True)
    (tmp_path / "P01" / "videos" / "P01_01.MP4").write_bytes(b"x")
    train = read_annotations(write_ek100(tmp_path / "t.csv", rows), tmp_path)
    mapping = build_class_mapping(train)
    # The spec construction, written out: the set of pairs in row order, then the component sets.
    actions = set()
    for _, _, _, v, n in rows:
        actions.add((v, n))
    verbs = {v for v, _ in actions}
    nouns = {n for _, n in actions}
    assert list(mapping.actions) == list(actions) and list(mapping.actions.values()) == list(range(len(actions)))
    assert mapping.verbs == {v: i for i, v in enumerate(verbs)}
    assert mapping.nouns == {n: i for i, n in enumerate(nouns)}
    assert list(mapping.verbs) != sorted(mapping.verbs) or list(mapping.nouns) != sorted(mapping.nouns)
    assert (mapping.num_verbs, mapping.num_nouns, mapping.num_actions) == (5, 5, 7)
    assert mapping.verb_name(97) == "v97"
    # JSON round trip keeps the ids.
    loaded = ClassMapping.load(mapping.save(tmp_path / "m.json"))
    assert loaded.actions == mapping.actions and loaded.verbs == mapping.verbs and loaded.nouns == mapping.nouns


def test_samplers_exact_once_and_official(tiny_anticipation) -> None:
    segments = read_annotations(tiny_anticipation.val)
    dataset = AnticipationDataset(segments, build_class_mapping(segments), EvalTransform(32), frames_per_clip=8)
    n = len(dataset)
    assert n == 6
    seen = [i for rank in range(4) for i in ExactOnceSampler(dataset, num_replicas=4, rank=rank)]
    assert sorted(seen) == list(range(n))  # every segment once, no padding
    # Official multiset (test_ek100_official.py has the hand-derived cases): 2 videos of 3, world 2, batch 1, one
    # worker → 6 // 2 = 3 iterations per rank, each rank streams its own video once: every segment once.
    official = [list(OfficialValSampler(dataset, 2, 1, 1, num_replicas=2, rank=r)) for r in range(2)]
    assert sorted(official[0] + official[1]) == list(range(n))
    # The released layout (64 ranks x batch 2) runs 6 // 128 = 0 iterations: nothing is evaluated.
    assert list(OfficialValSampler(dataset, num_replicas=1, rank=0)) == []


def test_dataset_clips_labels_and_augmentation(tiny_anticipation) -> None:
    torch.manual_seed(0)
    dm = EK100DataModule(
        train=tiny_anticipation.train, val=tiny_anticipation.val, frames_per_clip=8, crop_size=32, anchoring="standard"
    )
    mapping = dm.class_mapping
    train = dm.build_dataset("train")
    assert isinstance(train.transform, ProbeTrainTransform) and train.transform.hflip
    sample = train[3]
    assert sample["video"].shape == (3, 8, 32, 32)
    assert 0.25 <= sample["anticipation_time"] <= 1.75
    segment = train.segments[3]
    assert sample["action"] == mapping.actions[(segment.verb_class, segment.noun_class)]
    val = dm.build_dataset("val")
    assert 0 < len(val) <= 6  # val segments whose action is not a training action are dropped
    assert all((s.verb_class, s.noun_class) in mapping.actions for s in val.segments)
    a, b = val[0], val[0]
    assert a["anticipation_time"] == 1.0 and torch.equal(a["video"], b["video"])  # deterministic evaluation
    seg = val.segments[0]
    assert a["indices"].tolist() == list(np.maximum(np.arange(seg.start_frame - 8 - 8, seg.start_frame - 8), 0))
    batch = next(iter(dm.val_dataloader()))
    assert batch["video"].shape[1:] == (3, 8, 32, 32) and batch["action"].shape == batch["video"].shape[:1]


def test_data_module_official_val_mode(tiny_anticipation) -> None:
    # One official rank, batch 2, one worker: 6 // 2 = 3 iterations over the stream of the kept val segments.
    dm = EK100DataModule(
        train=tiny_anticipation.train, val=tiny_anticipation.val, frames_per_clip=8, crop_size=32, batch_size=4,
        val_mode="official", official_world_size=1, official_batch_size=2, official_num_workers=0,
    )  # fmt: skip
    n = len(dm.build_dataset("val"))
    seen = [int(i) for batch in dm.val_dataloader() for i in batch["segment"]]
    assert len(seen) == 2 * (n // 2) and len(set(seen)) == len(seen)
