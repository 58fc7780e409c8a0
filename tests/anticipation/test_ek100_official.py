"""EK100 data semantics checked against the official V-JEPA 2 code (facebookresearch/vjepa2,
``evals/action_anticipation_frozen/{epickitchens.py, eval.py, modelcustom/vit_encoder_predictor_concat_ar.py}``).

Every expected number below was derived by hand from the official functions named in each test's docstring.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from jepa.data.ek100 import (
    EK100DataModule,
    OfficialValSampler,
    Segment,
    anticipation_frame_indices,
    build_class_mapping,
    collate_anticipation,
    official_val_batches,
    read_annotations,
)


def seg(video: str, start: int, verb: int = 0, noun: int = 0) -> Segment:
    return Segment(video, f"/v/{video}.MP4", start, start + 10, verb, noun)


# Row index: 0..10; videos in first-appearance order A, B, C, D, E; starts deliberately unsorted inside A and D.
ROWS = [seg("A", 300), seg("B", 50), seg("A", 100), seg("C", 10), seg("D", 40), seg("D", 10), seg("E", 5),
        seg("A", 200), seg("B", 60), seg("D", 30), seg("D", 20)]  # fmt: skip


class FakeDataset:
    """Just the segments (the samplers read nothing else)."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments

    def __len__(self) -> int:
        return len(self.segments)


def test_official_val_batches_by_hand() -> None:
    """epickitchens.py ``build_annotations`` (videos in first-appearance order, rows ``sort_values("start_frame")``),
    ``get_video_wds_dataset`` (``split_by_node`` = ``islice(rank, None, world)``, ``wds.split_by_worker``,
    ``wds.batched(partial=True)``, DataLoader round-robin over workers), ``make_webvid`` (``num_batches = N //
    (world · batch)``) and eval.py ``validate`` (``ipe`` iterations, ``iter(data_loader)`` again on exhaustion).

    11 segments, world 2, batch 2 → ipe = 11 // 4 = 2 per rank. Rank 0 holds videos A, C, E; rank 1 B, D.
    2 workers: rank 0 worker 0 streams A (rows 2, 7, 0 by start) then E (6) → [2, 7], [0, 6]; worker 1 streams C →
    [3]; loader order [2, 7], [3], [0, 6]; 2 iterations. Rank 1: worker 0 B → [1, 8]; worker 1 D (5, 10, 9, 4) →
    [5, 10], [9, 4]; order [1, 8], [5, 10], [9, 4].
    """
    assert official_val_batches(ROWS, 2, 0, 2, num_workers=2) == [[2, 7], [3]]
    assert official_val_batches(ROWS, 2, 1, 2, num_workers=2) == [[1, 8], [5, 10]]
    # One stream per rank (num_workers 0): rank 0 streams A, C, E = 2, 7, 0, 3, 6.
    assert official_val_batches(ROWS, 2, 0, 2, num_workers=0) == [[2, 7], [0, 3]]
    assert official_val_batches(ROWS, 2, 1, 2, num_workers=1) == [[1, 8], [5, 10]]
    # A rank without videos evaluates nothing (the official loop would fail there).
    assert official_val_batches(ROWS[:2], 3, 2, 1, num_workers=1) == []


def test_official_val_restart_after_partial_batch() -> None:
    """eval.py ``validate``: ``next()`` fails → ``iter(data_loader)`` restarts; the last batch of a worker is partial
    (``wds.batched(partial=True)``). Video P has 7 segments, Q one: N = 8, world 2, batch 2 → ipe = 2. Rank 0:
    [p0, p1], [p2, p3] (p4..p6 never seen); rank 1: [q0], restart, [q0] (q0 counted twice, not four times)."""
    rows = [seg("P", 10 * i) for i in range(7)] + [seg("Q", 0)]
    assert official_val_batches(rows, 2, 0, 2, num_workers=1) == [[0, 1], [2, 3]]
    assert official_val_batches(rows, 2, 1, 2, num_workers=1) == [[7], [7]]


def test_official_sampler_is_the_official_multiset_on_any_world() -> None:
    """The official ``ClassMeanRecall`` all-reduces per-class TP / FN, so the result depends only on the multiset of
    evaluated segments: here {2, 7, 3} ∪ {1, 8, 5, 10} (previous test), split over 3 actual ranks exactly once."""

    shares = [list(OfficialValSampler(FakeDataset(ROWS), 2, 2, 2, num_replicas=3, rank=r)) for r in range(3)]
    assert sorted(i for share in shares for i in share) == [1, 2, 3, 5, 7, 8, 10]
    assert [len(share) for share in shares] == [3, 2, 2]
    rows = [seg("P", 10 * i) for i in range(7)] + [seg("Q", 0)]
    single = list(OfficialValSampler(FakeDataset(rows), 2, 2, 1, num_replicas=1, rank=0))
    assert sorted(single) == [0, 1, 2, 3, 7, 7]  # duplicates kept, as in the official loop


def test_clip_indices_59_94_fps_by_hand() -> None:
    """epickitchens.py ``decode_videos_to_clips``: ``fstp = int(vfps / 8)``, ``nframes = 32 · fstp``, ``aframes =
    int(at · vfps)``, ``af = int(sf · ap + (1 − ap) · ef − aframes)``, ``arange(af − nframes, af, fstp)``.
    59.94 fps: fstp = 7, nframes = 224. Val (at 1, ap 0), segment 1000–1300: aframes 59, af 1241 → 1017 … 1234.
    Train draw at 1.75, ap 0.25: aframes int(104.895) = 104, af = int(250 + 975 − 104) = 1121 → 897 … 1114."""
    val = anticipation_frame_indices(1000, 1300, 59.94, 1.0, 0.0)
    assert (val[0], val[-1], len(val)) == (1017, 1234, 32) and set(np.diff(val)) == {7}
    train = anticipation_frame_indices(1000, 1300, 59.94, 1.75, 0.25)
    assert (train[0], train[-1]) == (897, 1114)


def test_anticipation_time_keeps_float64_like_the_official_collate() -> None:
    """Official: ``default_collate`` turns the Python float ``at`` into float64, and the wrapper computes
    ``(at · 8 / 2).to(int64)``. at = 0.7499999999 → int(2.9999999996) = 2 steps; float32 would round to 0.75 → 3."""
    sample = {"video": torch.zeros(3, 2, 4, 4), "verb": 0, "noun": 0, "action": 0, "anticipation_time": 0.7499999999,
              "indices": torch.zeros(2, dtype=torch.int64), "path": "x", "video_id": "x", "segment": 0}  # fmt: skip
    at = collate_anticipation([sample])["anticipation_time"]
    assert at.dtype == torch.float64
    assert int((at * 8 / 2).to(torch.int64)) == 2


def test_verb_noun_ids_small_ints_by_hand() -> None:
    """epickitchens.py ``filter_annotations``: ``tverbs = set(v for v, _ in tactions)``; ``{k: i for i, k in
    enumerate(tverbs)}``. CPython: hash(i) = i, a set of < 5 ints has 8 slots, slot = i & 7, so ints < 8 iterate
    by value: verbs 5, 2, 7 (row order) → ids {2: 0, 5: 1, 7: 2}; nouns 3, 1 → {1: 0, 3: 1}."""
    rows = [Segment("P01_01", "p", i, i + 1, v, n) for i, (v, n) in enumerate([(5, 3), (2, 1), (7, 3), (5, 3)])]
    mapping = build_class_mapping(rows)
    assert mapping.verbs == {2: 0, 5: 1, 7: 2}
    assert mapping.nouns == {1: 0, 3: 1}
    assert sorted(mapping.actions) == [(2, 1), (5, 3), (7, 3)] and sorted(mapping.actions.values()) == [0, 1, 2]


def test_class_ids_equal_the_official_numpy_construction() -> None:
    """``filter_annotations`` iterates pandas ``.values`` (numpy int64): ``set([(v, n) for v, n in zip(verbs,
    nouns)])``; verbs / nouns are sets built from that set's iteration. numpy int64 hashes equal int hashes, so the
    order equals ours on Python ints. EK100-like ranges (97 verbs, 300 nouns): the verb / noun tables (512 slots)
    exceed every raw id, so their ids are the rank among the train classes; the action ids are hash-scrambled."""
    rng = np.random.default_rng(0)
    verb_col = rng.integers(0, 97, 3000).astype(np.int64)  # what pandas' .values holds
    noun_col = rng.integers(0, 300, 3000).astype(np.int64)
    actions = set([(v, n) for v, n in zip(verb_col, noun_col, strict=True)])  # official statement, numpy scalars
    verbs = set([v for v, _ in actions])
    nouns = set([n for _, n in actions])
    pairs = zip(verb_col.tolist(), noun_col.tolist(), strict=True)  # Python ints, as our csv reader gives
    rows = [Segment("P01_01", "p", i, i + 1, v, n) for i, (v, n) in enumerate(pairs)]
    mapping = build_class_mapping(rows)
    assert mapping.actions == {(int(v), int(n)): i for i, (v, n) in enumerate(actions)}
    assert mapping.verbs == {int(v): i for i, v in enumerate(verbs)}
    assert mapping.nouns == {int(n): i for i, n in enumerate(nouns)}
    assert mapping.verbs == {v: i for i, v in enumerate(sorted(mapping.verbs))}
    assert mapping.nouns == {n: i for i, n in enumerate(sorted(mapping.nouns))}
    assert list(mapping.actions) != sorted(mapping.actions)


def test_mapping_counts_train_rows_of_missing_videos(tmp_path: Path) -> None:
    """``filter_annotations`` builds the classes from ALL train rows (``tdf``) before ``build_annotations`` drops the
    videos missing on disk; val rows with an unknown action are dropped. P02_01 is missing but its action (9, 9)
    still gets an id: 3 actions, 3 verbs, 2 nouns; the val row (4, 4) is dropped, (9, 9) is kept."""
    (tmp_path / "P01" / "videos").mkdir(parents=True)
    (tmp_path / "P01" / "videos" / "P01_01.MP4").write_bytes(b"x")
    header = ["video_id", "start_frame", "stop_frame", "verb_class", "noun_class"]

    def write(name: str, rows: list[tuple[str, int, int, int, int]]) -> str:
        with open(tmp_path / name, "w", newline="") as handle:
            csv.writer(handle).writerows([header, *rows])
        return str(tmp_path / name)

    train = write("train.csv", [("P01_01", 0, 9, 1, 2), ("P02_01", 0, 9, 9, 9), ("P01_01", 20, 29, 3, 2)])
    val = write("val.csv", [("P01_01", 40, 49, 4, 4), ("P01_01", 50, 59, 9, 9)])
    dm = EK100DataModule(train=train, val=val, base_path=str(tmp_path), crop_size=32, frames_per_clip=2)
    mapping = dm.class_mapping
    assert (mapping.num_verbs, mapping.num_nouns, mapping.num_actions) == (3, 2, 3)
    assert (9, 9) in mapping.actions
    assert len(dm.segments("train")) == 2  # the missing video's row is not loaded
    official_rows = read_annotations(train, tmp_path, skip_missing=False)
    assert mapping.actions == build_class_mapping(official_rows).actions
    assert [(s.verb_class, s.noun_class) for s in dm.build_dataset("val").segments] == [(9, 9)]
