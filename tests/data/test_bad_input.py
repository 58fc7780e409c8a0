"""Every kind of bad input is skipped, counted, warned about once, and never fatal."""

from __future__ import annotations

import logging
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from synth_fixtures import write_bad_inputs, write_csv, write_videos  # noqa: E402

from jepa.data.datamodules import collate_samples  # noqa: E402
from jepa.data.datasets import VideoClipDataset  # noqa: E402
from jepa.data.sampling import ClipSampling  # noqa: E402

SAMPLING = ClipSampling(frames_per_clip=4, fps=4)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    good = write_videos(root / "good", 2)
    return good, write_bad_inputs(root / "bad", good[0])


@pytest.mark.parametrize(
    "kind", ["zero_byte", "truncated", "non_video", "missing", "too_short", "undecodable", "too_large"]
)
def test_each_bad_kind_skipped_counted_warned_once(files, kind, tmp_path, caplog):
    good, bad = files
    path = bad[kind] if kind != "too_large" else write_videos(tmp_path / "big", 1, size=96)[0]
    rows = [(path, 9), (good[0], 1)]
    limit = os.path.getsize(good[0]) if kind == "too_large" else 10**9  # official filter_long_videos
    ds = VideoClipDataset(write_csv(tmp_path / "l.csv", rows), SAMPLING, seed=0, filter_long_videos=limit)
    caplog.set_level(logging.WARNING, logger="jepa.data")
    out = [ds[0] for _ in range(3)]
    for s in out:
        assert s["path"] == good[0] and s["label"] == 1  # replaced by the good sample
    assert ds.skips.total >= 3 and sum(s["skipped"] for s in out) == ds.skips.total
    warnings = [r.getMessage() for r in caplog.records if "skipping bad sample" in r.getMessage()]
    assert len(warnings) == 1 and path in warnings[0]


def test_filter_short_videos(files, tmp_path):
    good, _ = files
    short = write_videos(tmp_path / "s", 1, frames=5)[0]
    sampling = ClipSampling(frames_per_clip=4, frame_step=2)
    ds = VideoClipDataset([(short, 0), (good[0], 1)], sampling, filter_short_videos=True)
    assert ds[0]["path"] == good[0] and ds.skips.total >= 1
    assert VideoClipDataset([(short, 0)], sampling)[0]["path"] == short  # off by default (official)


def test_all_bad_raises_after_max_retries(files):
    _, bad = files
    ds = VideoClipDataset([(bad["zero_byte"], 0), (bad["missing"], 0)], SAMPLING, max_retries=5)
    with pytest.raises(RuntimeError, match="6 consecutive bad samples"):
        ds[0]


def test_skip_counts_aggregate_over_workers(files, tmp_path):
    good, bad = files
    rows = [(good[0], 0)] + [(p, 0) for p in bad.values()] + [(good[1], 1)]
    ds = VideoClipDataset(rows, SAMPLING, seed=1)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=2, num_workers=2, collate_fn=collate_samples, generator=torch.Generator().manual_seed(0)
    )
    batches = list(loader)
    total = int(sum(b["skipped"] for b in batches))
    assert sum(len(b["path"]) for b in batches) == len(rows)
    assert all(p in good for b in batches for p in b["path"])
    assert total >= len(bad)  # each bad index retried at least once; counted in the workers, summed in batches
