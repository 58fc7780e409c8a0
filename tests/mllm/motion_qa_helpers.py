"""Shared pieces of the MLLM tests: a short Lightning fit, and the cached-token motion-QA alignment runs."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn

import jepa
from jepa.mllm.data import MOTION_QUESTION, VideoQADataModule, VideoQAJsonlDataset, write_motion_qa
from jepa.mllm.evaluation import mc_prompt
from jepa.tasks.video_qa import VideoQATask

OPTIONS = ["left", "right", "up", "down"]
TINY_LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 4}  # fmt: skip
Split = tuple[torch.Tensor, torch.Tensor]


def fit_task(task: VideoQATask, data: VideoQADataModule, tmp_path: Path, steps: int = 2) -> pl.Trainer:
    """``steps`` training steps on CPU, no logger / checkpoints / validation."""
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, data)
    return trainer


class CachedTokens(nn.Module):
    """Pass-through 'encoder' for precomputed ``(B, 64, 192)`` tokens of an 8-frame 64-px ``vit_tiny`` clip."""

    embed_dim = 192

    def patch_grid(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        return (4, 4, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens


def motion_qa_tokens(tmp_path: Path) -> tuple[Split, Split]:
    """Write the 4-way motion QA set (96 train / 16 val per class) and encode it once with a random 2-block
    ``vit_tiny`` → ``((tokens (N, 64, 192), answers (N,)) train, (…) val)``."""
    paths = write_motion_qa(tmp_path, train_per_class=96, val_per_class=16, frames=16, speed=4.0)
    torch.manual_seed(0)
    encoder = jepa.create_encoder("vit_tiny", img_size=64, num_frames=8, depth=2).eval()

    def encode(path: str) -> Split:
        dataset = VideoQAJsonlDataset(path, num_frames=8, crop_size=64)
        with torch.no_grad():
            samples = [dataset[i] for i in range(len(dataset))]
            tokens = torch.stack([encoder(s["video"][None])[0] for s in samples])  # (N, 64, 192)
        return tokens, torch.tensor([s["answer"] for s in samples])

    return encode(paths["train"]), encode(paths["val"])


def train_and_score_motion_qa(task: VideoQATask, train: Split, val: Split, steps: int) -> float:
    """AdamW (lr 1e-3, no weight decay) on batches of 16 cached clips, then multiple-choice accuracy on ``val``."""
    x_train, y_train = train
    prompt = mc_prompt(MOTION_QUESTION, OPTIONS)
    optimizer = torch.optim.AdamW([p for p in task.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    task.train()
    for _ in range(steps):
        index = torch.randint(0, len(y_train), (16,), generator=generator)
        conversations = [[{"from": "human", "value": prompt}, {"from": "gpt", "value": "ABCD"[int(y)]}]
                         for y in y_train[index]]  # fmt: skip
        fused = task.fuse(task.encode_video(x_train[index]), conversations)
        loss, _ = task.answer_loss(task._lm_logits(fused), fused.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    task.eval()
    x_val, y_val = val
    predictions = task.choose(task.encode_video(x_val), [MOTION_QUESTION] * len(y_val), [OPTIONS] * len(y_val))
    return (predictions == y_val).float().mean().item()
