"""Shared fixtures of the anticipation tests: one tiny synthetic anticipation dataset per session."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)  # 2 shared cores: intra-op threads make tiny ops much slower


@pytest.fixture(scope="session")
def tiny_anticipation(tmp_path_factory: pytest.TempPathFactory):
    """4 train + 2 val videos of 3 motion segments (16 frames each, 32 x 32, 8 fps), "segments" CSVs."""
    from jepa.data.anticipation_synth import generate_anticipation_dataset

    return generate_anticipation_dataset(
        tmp_path_factory.mktemp("anticipation"), train_videos=4, val_videos=2, segments_per_video=3, size=32
    )
