"""It aligns: a tiny random LM + MLP projector learns "which way does the object move?" from frozen encoder tokens.

The frozen random ViT's tokens are computed once (the encoder is frozen, so this is exactly what training sees) and
fed through a pass-through encoder; the projector and the LM train with the task's own fusion, loss and
log-likelihood scoring. Chance is 25 % (4 directions). Reference run (docs/mllm.md): 56 % after 500 steps.
Marked slow: ~2–10 min on a 2-core CPU depending on load.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import jepa
from jepa.mllm.data import MOTION_QUESTION, VideoQAJsonlDataset, write_motion_qa
from jepa.mllm.evaluation import mc_prompt
from jepa.tasks.video_qa import VideoQATask

OPTIONS = ["left", "right", "up", "down"]


class CachedTokens(nn.Module):
    """Pass-through 'encoder' for precomputed ``(B, 64, 192)`` tokens of a 8-frame 64-px vit_tiny clip."""

    embed_dim = 192

    def patch_grid(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        return (4, 4, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens


def _tokens(encoder: nn.Module, path: str) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = VideoQAJsonlDataset(path, num_frames=8, crop_size=64)
    with torch.no_grad():
        samples = [dataset[i] for i in range(len(dataset))]
        tokens = torch.stack([encoder(s["video"][None])[0] for s in samples])  # (N, 64, 192)
    return tokens, torch.tensor([s["answer"] for s in samples])


@pytest.mark.slow
def test_tiny_lm_answers_motion_questions_above_chance(tmp_path: Path) -> None:
    paths = write_motion_qa(tmp_path, train_per_class=96, val_per_class=16, frames=16, speed=4.0)
    torch.manual_seed(0)
    encoder = jepa.create_encoder("vit_tiny", img_size=64, num_frames=8, depth=2).eval()
    x_train, y_train = _tokens(encoder, paths["train"])
    x_val, y_val = _tokens(encoder, paths["val"])
    torch.manual_seed(0)
    llm_config = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "num_key_value_heads": 4}  # fmt: skip
    task = VideoQATask(
        encoder=CachedTokens(), llm_config=llm_config, tokenizer="builtin:words", projector="mlp",
        num_frames=8, crop_size=64, stage="full",
    )  # fmt: skip
    prompt = mc_prompt(MOTION_QUESTION, OPTIONS)
    optimizer = torch.optim.AdamW([p for p in task.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    task.train()
    for _ in range(500):
        index = torch.randint(0, len(y_train), (16,), generator=generator)
        conversations = [[{"from": "human", "value": prompt}, {"from": "gpt", "value": "ABCD"[int(y)]}]
                         for y in y_train[index]]  # fmt: skip
        fused = task.fuse(task.encode_video(x_train[index]), conversations)
        loss, _ = task.answer_loss(task._lm_logits(fused), fused.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    task.eval()
    predictions = task.choose(task.encode_video(x_val), [MOTION_QUESTION] * len(y_val), [OPTIONS] * len(y_val))
    accuracy = (predictions == y_val).float().mean().item()
    assert accuracy >= 0.40, f"val accuracy {accuracy:.3f}; chance is 0.25"
