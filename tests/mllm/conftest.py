"""Shared fixtures of the MLLM tests: a local word-level tokenizer, a tiny random LM config, synthetic QA data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("transformers")

WORDS = "which way does the object move left right up down answer with option ' s letter from given choices directly"


@pytest.fixture(autouse=True)
def _few_threads() -> Iterator[None]:
    """The tiny models are faster on one thread on a shared machine; restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture()
def tokenizer() -> Any:
    from jepa.mllm.fusion import build_word_tokenizer

    return build_word_tokenizer(WORDS.split())


@pytest.fixture()
def llm_config() -> dict[str, Any]:
    return {
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
    }


@pytest.fixture(scope="session")
def motion_qa(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """2 train + 1 val videos per direction (16 frames, 64 px, 4 px / frame)."""
    from jepa.mllm.data import write_motion_qa

    root: Path = tmp_path_factory.mktemp("motion_qa")
    return write_motion_qa(root, train_per_class=2, val_per_class=1, frames=16, size=64, speed=4.0)


@pytest.fixture()
def tiny_task_kwargs(llm_config: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """``make(**overrides)`` → VideoQATask kwargs: 2-block tiny ViT, 64 px / 8 frames (64 tokens), builtin tokenizer."""

    def make(**overrides: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "encoder": "vit_tiny",
            "encoder_overrides": {"img_size": 64, "num_frames": 8, "depth": 2},
            "llm_config": llm_config,
            "tokenizer": "builtin:words",
            "projector": "attentive",
            "pooling_factor": 4,
            "projector_heads": 4,
            "num_frames": 8,
            "crop_size": 64,
            "lr": 1e-3,
        }
        kwargs.update(overrides)
        return kwargs

    return make
