"""WebDataset shards: round trip, brace / pipe URLs, rank × worker splitting, resampled epochs, corrupt members."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from synth_fixtures import write_bad_inputs, write_csv, write_image, write_videos  # noqa: E402

from jepa.data.clips import load_clips  # noqa: E402
from jepa.data.sampling import ClipSampling  # noqa: E402
from jepa.data.shards import ShardDataset, assign_shards, expand_shard_urls, write_shards  # noqa: E402

SAMPLING = ClipSampling(frames_per_clip=4, frame_step=2, random_clip_sampling=False)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("shard_media")
    videos = write_videos(root / "videos", 9)
    image = write_image(root / "img.png")
    rows = [(p, i % 3) for i, p in enumerate(videos)] + [(image, 7)]
    csv = write_csv(root / "list.csv", rows)
    out = write_shards(csv, root / "shards", max_count=2, prefix="part")
    return {"root": root, "rows": rows, "csv": csv, "result": out}


def keys_of(samples):
    return sorted(s["path"] for s in samples)


def test_writer_layout_and_metadata(media):
    result = media["result"]
    assert len(result.shards) == 5 and result.num_samples == 10 and not result.skipped
    sizes = json.loads(Path(os.path.join(media["root"], "shards", "sizes.json")).read_text())
    assert sizes == {f"part-{i:06d}.tar": 2 for i in range(5)}
    with tarfile.open(result.shards[0]) as tar:
        names = tar.getnames()
        assert names == ["00000000.json", "00000000.mp4", "00000001.json", "00000001.mp4"]
        meta = json.loads(tar.extractfile("00000001.json").read())
        raw = tar.extractfile("00000001.mp4").read()
    path, label = media["rows"][1]
    assert raw == Path(path).read_bytes()  # ORIGINAL compressed bytes
    assert meta["label"] == label and meta["num_frames"] == 24 and meta["fps"] == 8.0
    assert (meta["width"], meta["height"], meta["source"]) == (32, 32, path)
    assert expand_shard_urls(result.pattern) == result.shards


def test_round_trip_frames_identical(media):
    ds = ShardDataset(media["result"].pattern, SAMPLING, shuffle_shards=False, rank=0, world_size=1)
    samples = list(ds)
    assert keys_of(samples) == sorted(p for p, _ in media["rows"])
    labels = dict(media["rows"])
    for s in samples:
        ref = load_clips(s["path"], SAMPLING, np.random.default_rng(0))
        expected = ref.clips[0].permute(3, 0, 1, 2).float()  # (3, T, H, W)
        assert torch.equal(s["clips"][0], expected)
        assert s["label"] == labels[s["path"]] and s["fpc"] == 4 and s["skipped"] == 0
        assert torch.equal(s["indices"][0], torch.as_tensor(ref.indices[0]))


def test_pipe_url_and_explicit_list(media):
    shards = media["result"].shards
    ds = ShardDataset([f"pipe:cat {shards[0]}", shards[1]], SAMPLING, shuffle_shards=False, rank=0, world_size=1)
    assert keys_of(ds) == sorted(p for p, _ in media["rows"][:4])


@pytest.mark.parametrize("num_shards", [12, 5, 3])
def test_assign_shards_exactly_once(num_shards):
    counts = {s: 6 for s in range(num_shards)}
    seen = []
    for reader in range(4):
        parts = assign_shards(num_shards, reader, 4)
        assert parts, f"reader {reader} got no data"
        seen += [(s, p) for s, n, k in parts for p in range(counts[s]) if p % n == k]
    assert sorted(seen) == sorted((s, p) for s in counts for p in range(counts[s]))


@pytest.mark.parametrize("shards_used", [5, 3])
def test_two_ranks_two_workers_cover_epoch_once(media, shards_used):
    urls = media["result"].shards[:shards_used]  # 5 ≥ 4 readers: by shard; 3 < 4 readers: by sample
    expected = sorted(p for p, _ in media["rows"][: 2 * shards_used])
    for epoch in (0, 1):
        per_reader = []
        for rank in range(2):
            ds = ShardDataset(urls, SAMPLING, seed=3, rank=rank, world_size=2)
            for worker in range(2):
                per_reader.append(keys_of(ds.iter_reader(rank, 2, worker, 2, epoch=epoch)))
        assert all(per_reader), "a reader got no data"
        union = sorted(k for r in per_reader for k in r)
        assert union == expected  # each sample exactly once, readers pairwise disjoint


def test_shuffle_buffer_and_epochs(media):
    ds = ShardDataset(media["result"].pattern, SAMPLING, shuffle_buffer=4, seed=1, rank=0, world_size=1)
    ds.set_epoch(0)
    a = [s["path"] for s in ds]
    b = [s["path"] for s in ds]  # second iteration = next epoch
    ds.set_epoch(0)
    c = [s["path"] for s in ds]
    assert sorted(a) == sorted(b) == sorted(p for p, _ in media["rows"])
    assert a == c and a != b


def test_resampled_epoch_length(media):
    ds = ShardDataset(media["result"].pattern, SAMPLING, resampled=True, epoch_size=7, rank=1, world_size=2)
    assert len(ds) == 7
    n = [len(list(ds.iter_reader(1, 2, w, 2, epoch=0))) for w in range(2)]
    assert n == [4, 3]
    assert len(list(ds)) == 7  # no worker info: one reader does the whole rank's epoch


def test_dataloader_workers(media):
    ds = ShardDataset(media["result"].pattern, SAMPLING, rank=0, world_size=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    assert keys_of(list(loader)) == sorted(p for p, _ in media["rows"])


def test_corrupt_members_and_truncated_shard_skipped(media, tmp_path, caplog):
    good = media["rows"][0][0]
    data = Path(good).read_bytes()
    bad_tar = tmp_path / "bad-000000.tar"
    with tarfile.open(bad_tar, "w") as tar:

        def add(name, payload):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

        add("a.mp4", data)
        add("a.json", json.dumps({"label": 1, "source": "a"}).encode())
        add("b.mp4", b"\x00garbage" * 100)  # undecodable video member
        add("b.json", b'{"label": 2, "source": "b"}')
        add("c.mp4", data)
        add("c.json", b"{not json")  # corrupt json member
        add("d.pyd", b"\x80\x04pickled")  # never unpickled: a sample without media / json
        add("e.mp4", data)
        add("e.json", b'{"label": 5, "source": "e"}')
    raw = Path(media["result"].shards[0]).read_bytes()
    truncated = tmp_path / "bad-000001.tar"
    truncated.write_bytes(raw[: len(raw) // 2 + 100])  # cut inside the second sample's mp4 member
    ds = ShardDataset(str(tmp_path / "bad-{000000..000001}.tar"), SAMPLING, shuffle_shards=False, rank=0, world_size=1)
    samples = list(ds) + list(ds)
    got = [s["path"] for s in samples]
    first_shard_first = media["rows"][0][0]
    assert got.count("a") == 2 and got.count("e") == 2 and "b" not in got and "c" not in got
    assert got.count(first_shard_first) == 2
    # b, c, d and the truncated shard each counted per pass; the `skipped` deltas add up to the counter
    assert ds.skips.total == 8
    assert sum(s["skipped"] for s in samples) + ds.skips.take_delta() == 8
    warnings = [r.getMessage() for r in caplog.records if "skipping bad sample" in r.getMessage()]
    assert len(warnings) == 4  # once per bad path, not per pass


def test_writer_skips_bad_inputs(media, tmp_path):
    bad = write_bad_inputs(tmp_path / "bad", media["rows"][0][0])
    rows = [(media["rows"][0][0], 0)] + [(p, 0) for k, p in bad.items() if k != "too_short"]
    result = write_shards(rows, tmp_path / "out")
    assert result.num_samples == 1
    assert sorted(p for p, _ in result.skipped) == sorted(p for k, p in bad.items() if k != "too_short")


def test_epoch_dataloader_reshuffles_every_epoch(media):
    from jepa.data.shards import EpochDataLoader

    ds = ShardDataset(media["result"].pattern, SAMPLING, shuffle_buffer=4, seed=2, rank=0, world_size=1)
    loader = EpochDataLoader(ds, batch_size=None, num_workers=0)
    e0 = [s["path"] for s in loader]
    e1 = [s["path"] for s in loader]
    again = [s["path"] for s in EpochDataLoader(ds, batch_size=None, num_workers=0)]  # a new loader restarts at 0
    assert e0 != e1 and e0 == again and sorted(e0) == sorted(e1)
