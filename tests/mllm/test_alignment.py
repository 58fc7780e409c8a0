"""It aligns: a tiny random LM + MLP projector learns "which way does the object move?" from frozen encoder tokens.

The frozen random ViT's tokens are computed once (the encoder is frozen, so this is exactly what training sees) and
fed through a pass-through encoder; the projector and the LM train with the task's own fusion, loss and
log-likelihood scoring. Chance is 25 % (4 directions). Reference run (docs/mllm.md): 56 % after 500 steps.
Marked slow: ~2–10 min on a 2-core CPU depending on load.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from jepa.tasks.video_qa import VideoQATask

sys.path.insert(0, os.path.dirname(__file__))
from motion_qa_helpers import TINY_LLAMA, CachedTokens, motion_qa_tokens, train_and_score_motion_qa  # noqa: E402


@pytest.mark.slow
def test_tiny_lm_answers_motion_questions_above_chance(tmp_path: Path) -> None:
    train, val = motion_qa_tokens(tmp_path)
    torch.manual_seed(0)
    task = VideoQATask(
        encoder=CachedTokens(), llm_config=TINY_LLAMA, tokenizer="builtin:words", projector="mlp",
        num_frames=8, crop_size=64, stage="full",
    )  # fmt: skip
    accuracy = train_and_score_motion_qa(task, train, val, steps=500)
    assert accuracy >= 0.40, f"val accuracy {accuracy:.3f}; chance is 0.25"
