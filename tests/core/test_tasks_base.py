"""BaseTask (frozen parts, checkpoints) and FeatureExtractionTask."""

from __future__ import annotations

import pytest
import torch

from jepa.data.datamodules import VideoClassificationDataModule
from jepa.encoders import EncoderConfig, VideoViT
from jepa.tasks import FeatureExtractionTask


def tiny_encoder() -> VideoViT:
    torch.manual_seed(0)
    return VideoViT(EncoderConfig(embed_dim=48, depth=3, num_heads=4, img_size=32))


def test_feature_task_accepts_a_module_and_pools() -> None:
    encoder = tiny_encoder()
    video = torch.randn(2, 3, 3, 4, 32, 32)  # (B, S, 3, T, H, W)
    mean_task = FeatureExtractionTask(encoder=encoder, pooling="mean")
    features = mean_task.encode(video)
    expected = encoder(video.flatten(0, 1)).unflatten(0, (2, 3)).mean(dim=(1, 2))
    torch.testing.assert_close(features, expected)

    tokens = FeatureExtractionTask(encoder=encoder, pooling="none", out_layers=[0, 2]).encode(video)
    assert tokens.shape == (2, 3, 2 * 2 * 4, 48)  # two layers concatenated along tokens (2·N, N = 2·2·2)
    pooled = FeatureExtractionTask(encoder=encoder, pooling="mean", out_layers=[0, 2]).encode(video)
    assert pooled.shape == (2, 96)  # layers concatenated along features


def test_frozen_encoder_stays_frozen_and_out_of_checkpoints() -> None:
    task = FeatureExtractionTask(encoder=tiny_encoder())
    task.train()
    assert not task.encoder.training
    assert all(not p.requires_grad for p in task.encoder.parameters())
    assert not any(key.startswith("encoder.") for key in task.state_dict())
    task.load_state_dict(task.state_dict())  # frozen parts are not expected back


def test_feature_task_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="pooling must be 'mean' or 'none'"):
        FeatureExtractionTask(encoder=tiny_encoder(), pooling="max")
    with pytest.raises(ValueError, match=r"must be \(B, S, 3, T, H, W\)"):
        FeatureExtractionTask(encoder=tiny_encoder()).encode(torch.randn(1, 3, 4, 32, 32))


def test_classification_datamodule_accepts_csv_spelling() -> None:
    module = VideoClassificationDataModule(train_csv="train.csv", val_csv="val.csv")
    assert module.paths == {"train": "train.csv", "val": "val.csv", "test": None}
    with pytest.raises(ValueError, match="give `train` or `train_csv`, not both"):
        VideoClassificationDataModule(train="a.csv", train_csv="b.csv")
