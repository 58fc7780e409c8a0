"""VideoClipDataset: sample dict format, per-list fpc, images as videos, seeded reproducibility."""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from synth_fixtures import write_csv, write_image, write_videos  # noqa: E402

from jepa.data.clips import load_clips  # noqa: E402
from jepa.data.csv_list import SampleList  # noqa: E402
from jepa.data.datasets import VideoClipDataset  # noqa: E402
from jepa.data.sampling import ClipSampling  # noqa: E402
from jepa.data.transforms import EvalTransform  # noqa: E402


def test_sample_format_matches_direct_decoding(tmp_path):
    videos = write_videos(tmp_path / "v", 3)
    csv = write_csv(tmp_path / "a.csv", [(os.path.relpath(p, tmp_path), i + 1) for i, p in enumerate(videos)])
    sampling = ClipSampling(frames_per_clip=4, frame_step=2, num_clips=2, random_clip_sampling=False)
    ds = VideoClipDataset(csv, sampling)
    s = ds[1]
    assert set(s) == {"clips", "label", "indices", "path", "dataset", "fpc", "skipped"}
    assert s["path"] == videos[1] and s["label"] == 2 and s["fpc"] == 4 and s["skipped"] == 0
    ref = load_clips(videos[1], sampling, np.random.default_rng(0))
    assert len(s["clips"]) == 2 and s["clips"][0].shape == (3, 4, 32, 32)
    for got, want in zip(s["clips"], ref.clips, strict=True):
        assert torch.equal(got, want.permute(3, 0, 1, 2).float())
    assert [i.tolist() for i in s["indices"]] == [i.tolist() for i in ref.indices]


def test_views_segments_flattened_segment_major(tmp_path):
    videos = write_videos(tmp_path / "v", 1, size=48)
    sampling = ClipSampling(frames_per_clip=4, frame_step=2, num_clips=2, random_clip_sampling=False)
    ds = VideoClipDataset([(videos[0], 0)], sampling, EvalTransform(crop_size=32, num_views=3))
    clips = ds[0]["clips"]
    assert len(clips) == 6 and all(c.shape == (3, 4, 32, 32) for c in clips)
    ref = load_clips(videos[0], sampling, np.random.default_rng(0))
    views_seg1 = EvalTransform(crop_size=32, num_views=3)(ref.clips[1])
    for got, want in zip(clips[3:], views_seg1, strict=True):
        torch.testing.assert_close(got, want)


def test_per_list_fpc_and_images(tmp_path):
    videos = write_videos(tmp_path / "v", 2)
    img = write_image(tmp_path / "im.jpg")
    lists = SampleList([[(videos[0], 0), (videos[1], 1)], [(img, 5)]])
    ds = VideoClipDataset(lists, [ClipSampling(4, frame_step=2), ClipSampling(8, frame_step=1)])
    assert ds.dataset_fpcs == [4, 8]
    v, im = ds[0], ds[2]
    assert v["fpc"] == 4 and v["clips"][0].shape[1] == 4 and v["dataset"] == 0
    assert im["fpc"] == 8 and im["dataset"] == 1 and im["label"] == 5
    clip = im["clips"][0]  # (3, 8, H, W) identical frames
    assert clip.shape[1] == 8 and torch.equal(clip[:, 0], clip[:, 7])
    assert im["indices"][0].tolist() == list(range(8))


def test_seeded_clip_positions_reproducible(tmp_path):
    videos = write_videos(tmp_path / "v", 1, frames=48)
    sampling = ClipSampling(frames_per_clip=4, frame_step=2)
    torch.manual_seed(0)
    a = [VideoClipDataset([(videos[0], 0)], sampling, seed=5)[0]["indices"][0].tolist() for _ in range(2)]
    b = VideoClipDataset([(videos[0], 0)], sampling, seed=5)
    b_first = b[0]["indices"][0].tolist()
    assert a[0] == a[1] == b_first  # same seed, same position
    c = VideoClipDataset([(videos[0], 0)], sampling, seed=6)
    positions = {tuple(c[0]["indices"][0].tolist()) for _ in range(8)}
    assert len(positions) > 1  # random clip sampling really varies
