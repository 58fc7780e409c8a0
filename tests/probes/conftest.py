"""Shared fixtures of the probe tests: one tiny synthetic video dataset and one image folder per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

# The CI machine has 2 shared cores: intra-op threads oversubscribe and make tiny ops ~100x slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory: pytest.TempPathFactory):
    """6 motion classes, 1 train + 1 val video each, 16 frames of 32 x 32 (`jepa.data.synthetic`)."""
    from jepa.data.synthetic import generate_synthetic_dataset

    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("videos"), kind="motion", videos_per_class=1, val_videos_per_class=1, frames=16, size=32
    )


@pytest.fixture(scope="session")
def tiny_swarm(tmp_path_factory: pytest.TempPathFactory):
    """The 4 swarm directions (quickstart_swarm_probe.yaml), 1 train + 1 val video each, 16 frames of 32 x 32."""
    from jepa.data.synthetic import generate_synthetic_dataset

    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("swarm"), kind="swarm", videos_per_class=1, val_videos_per_class=1, frames=16, size=32
    )


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageNet-style folder `root/{train,val}/<class>/<i>.jpg` with 3 classes of 32 x 32 images."""
    from jepa.data.encode import encode_image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label, name in enumerate(("red", "green", "blue")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(2):
                image = rng.integers(0, 60, size=(32, 32, 3), dtype=np.uint8)
                image[..., label] = 200
                encode_image(folder / f"{i}.jpg", image)
    return root
