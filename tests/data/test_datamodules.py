"""Lightning data modules: batch shapes, shards vs CSV, mixtures with per-source fpc, collate hook, YAML configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

sys.path.insert(0, os.path.dirname(__file__))
from synth_fixtures import write_image  # noqa: E402

from jepa.data.datamodules import (  # noqa: E402
    DataSource,
    ImageAsVideoDataModule,
    PretrainDataModule,
    VideoClassificationDataModule,
    collate_by_fpc,
)
from jepa.data.mixing import DistributedWeightedSampler  # noqa: E402
from jepa.data.shards import write_shards  # noqa: E402
from jepa.data.synthetic import generate_synthetic_dataset  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "jepa" / "configs" / "data"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("dm")
    res = generate_synthetic_dataset(
        root / "motion", "motion", videos_per_class=2, val_videos_per_class=1, frames=16, size=48, fps=8, seed=0
    )
    shards = write_shards(res.csvs["train"], root / "shards", max_count=4)
    return res, shards


def test_classification_csv_shapes(synth):
    res, _ = synth
    torch.manual_seed(0)
    dm = VideoClassificationDataModule(
        train=res.csvs["train"],
        val=res.csvs["val"],
        frames_per_clip=4,
        frame_step=2,
        num_segments=2,
        num_views=3,
        crop_size=32,
        batch_size=4,
    )
    batch = next(iter(dm.train_dataloader()))
    assert len(batch["clips"]) == 2 and batch["clips"][0].shape == (4, 3, 4, 32, 32)  # segments x 1 train view
    assert batch["label"].shape == (4,) and batch["label"].dtype == torch.int64
    assert len(batch["indices"]) == 2 and batch["indices"][0].shape == (4, 4)
    assert int(batch["skipped"]) == 0 and batch["fpc"] == 4
    val = list(dm.val_dataloader())
    assert sum(len(b["path"]) for b in val) == 6  # drop_last=False for evaluation
    assert len(val[0]["clips"]) == 6 and val[0]["clips"][5].shape == (4, 3, 4, 32, 32)  # 2 segments x 3 views


def test_classification_from_shards_with_workers(synth):
    res, shards = synth
    dm = VideoClassificationDataModule(
        train=shards.pattern,
        val=shards.pattern,
        frames_per_clip=4,
        frame_step=2,
        crop_size=32,
        batch_size=3,
        num_workers=2,
    )
    train = list(dm.train_dataloader())
    assert train and all(b["clips"][0].shape == (3, 3, 4, 32, 32) for b in train)
    val_paths = sorted(p for b in dm.val_dataloader() for p in b["path"])
    csv_paths = sorted(
        os.path.join(res.root, line.split(" ")[0]) for line in Path(res.csvs["train"]).read_text().split("\n") if line
    )
    assert val_paths == csv_paths  # every sample exactly once across the 2 workers


def test_pretrain_mixture_multi_fpc_and_collate_hook(synth):
    res, shards = synth
    sources = [
        DataSource("csv", res.csvs["train"], 0.5, frames_per_clip=4, fps=4),
        DataSource("shards", shards.pattern, 0.5, frames_per_clip=8, fps=4),
    ]
    dm = PretrainDataModule(sources, crop_size=32, batch_size=6, epoch_size=12, seed=1)
    assert dm.dataset_fpcs == [4, 8]
    batches = list(dm.train_dataloader())
    assert len(batches) == 2
    for groups in batches:
        assert isinstance(groups, list) and sum(len(g["path"]) for g in groups) == 6
        for g in groups:
            assert g["clips"][0].shape[1:] == (3, g["fpc"], 32, 32)
            assert set(g["source"]) == {"csv" if g["fpc"] == 4 else "shards"}
    seen = []
    dm2 = PretrainDataModule(
        sources, crop_size=32, batch_size=4, epoch_size=4, collate_fn=lambda s: seen.append(s) or 1
    )
    assert list(dm2.train_dataloader()) == [1] and len(seen[0]) == 4 and {"clips", "fpc", "source"} <= set(seen[0][0])


def test_pretrain_official_mode_uses_weighted_sampler(synth):
    res, _ = synth
    sources = [
        DataSource("a", res.csvs["train"], 0.9, frames_per_clip=4),
        DataSource("b", res.csvs["val"], 0.1, frames_per_clip=4),
    ]
    dm = PretrainDataModule(sources, crop_size=32, batch_size=4, mode="official")
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, DistributedWeightedSampler)
    groups = next(iter(loader))
    assert len(groups) == 1 and groups[0]["clips"][0].shape == (4, 3, 4, 32, 32)


def test_image_as_video(tmp_path):
    for c in ("cat", "dog"):
        os.makedirs(tmp_path / c)
        for i in range(2):
            write_image(tmp_path / c / f"{i}.png", seed=i, size=40)
    dm = ImageAsVideoDataModule(train=str(tmp_path), val=str(tmp_path), frames_per_clip=4, crop_size=32, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    clip = batch["clips"][0]
    assert clip.shape == (4, 3, 4, 32, 32) and dm.class_map == {"cat": 0, "dog": 1}
    val = next(iter(dm.val_dataloader()))["clips"][0]
    assert torch.equal(val[:, :, 0], val[:, :, 3])  # identical frames
    assert collate_by_fpc  # re-exported helper exists


@pytest.mark.parametrize("name", ["videomix22m.yaml", "videomix_public.yaml"])
def test_shipped_yaml_parses(name, monkeypatch, tmp_path):
    monkeypatch.setenv("VIDEOMIX_ROOT", str(tmp_path))
    parser = ArgumentParser()
    parser.add_subclass_arguments(PretrainDataModule, "data")
    cfg = parser.parse_args(["--data", str(CONFIGS / name)])
    dm = parser.instantiate(cfg).data
    assert isinstance(dm, PretrainDataModule) and all(isinstance(s, DataSource) for s in dm.sources)
    weights = {s.name: s.weight for s in dm.sources}
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert {s.fps for s in dm.sources} == {4.0} and dm.dataset_fpcs == [16] * len(dm.sources)
    expected = yaml.safe_load(Path(CONFIGS / name).read_text())["init_args"]["sources"]
    assert weights == {s["name"]: s["weight"] for s in expected}
    assert dm.sources[0].resolved_paths()[0].startswith(str(tmp_path))
    monkeypatch.delenv("VIDEOMIX_ROOT")
    with pytest.raises(ValueError, match="VIDEOMIX_ROOT"):
        dm.sources[0].resolved_paths()
