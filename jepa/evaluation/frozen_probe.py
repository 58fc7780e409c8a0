"""A light probe on frozen encoder features: does an encoder linearly / attentively separate the classes?

Used to show that pretraining learned something (`docs/pretraining.md`): features of every clip are computed once
with the encoder frozen (``torch.no_grad``, eval mode), cached, and a small probe is trained on the cache with full-
batch AdamW. Two probes:

- ``"linear"``: mean over tokens → LayerNorm (no affine) → linear.
- ``"temporal"``: mean over the spatial tokens of each temporal slot → LayerNorm → concatenation over slots →
  linear. Keeps the order of time, which a plain mean (and an attentive pooler without positions, over features
  of a RoPE encoder that carry no absolute position) cannot see: needed for classes defined by motion direction.
- ``"attentive"``: :class:`jepa.probes.pooler.AttentivePooler` (one cross-attention block from one learnable query,
  the evaluation probe of V-JEPA 2 in miniature) → linear.

This is not the official probe recipe (that is :class:`jepa.tasks.probe.ProbeTask`); it is a cheap, deterministic
check suitable for tests and tiny CPU experiments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from jepa.data.datasets import VideoClipDataset
from jepa.data.sampling import ClipSampling
from jepa.data.transforms import EvalTransform

ProbeKind = Literal["linear", "temporal", "attentive"]


@dataclass
class FrozenProbeResult:
    """Outcome of :func:`frozen_probe`: top-1 accuracies in [0, 1] and the sizes involved."""

    top1: float
    train_top1: float
    num_train: int
    num_val: int
    num_classes: int
    probe: str


@torch.no_grad()
def extract_features(
    encoder: nn.Module, dataset: VideoClipDataset, batch_size: int = 16, repeats: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen tokens of every sample of ``dataset``.

    Args:
        encoder: called as ``encoder(video)`` on ``(B, 3, T, H, W)`` → ``(B, N, D)``; put in eval mode for the call
            and restored to its previous mode after.
        dataset: yields dicts with ``clips`` (list with one ``(3, T, H, W)`` clip) and ``label``.
        batch_size: clips per encoder call.
        repeats: passes over the dataset (with random clip sampling each pass draws other clips: augmentation).

    Returns:
        ``(features (repeats·len(dataset), N, D) float32, labels (repeats·len(dataset),) int64)``.
    """
    (features,), labels = extract_features_many([encoder], dataset, batch_size=batch_size, repeats=repeats)
    return features, labels


@torch.no_grad()
def extract_features_many(
    encoders: Sequence[nn.Module], dataset: VideoClipDataset, batch_size: int = 16, repeats: int = 1
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """:func:`extract_features` for several encoders on the same clips, each clip decoded once.

    Returns:
        ``([features of each encoder], labels)``.
    """
    modes = [encoder.training for encoder in encoders]
    for encoder in encoders:
        encoder.eval()
    feats: list[list[torch.Tensor]] = [[] for _ in encoders]
    labels: list[int] = []
    clips: list[torch.Tensor] = []

    def flush() -> None:
        if clips:
            batch = torch.stack(clips)  # (b, 3, T, H, W)
            for out, encoder in zip(feats, encoders, strict=True):
                out.append(encoder(batch).float())  # (b, N, D)
            clips.clear()

    for _ in range(repeats):
        for i in range(len(dataset)):
            sample = dataset[i]
            if len(sample["clips"]) != 1:
                raise ValueError(
                    f"extract_features: sample {i} ({sample.get('path')}) has {len(sample['clips'])} clips; "
                    "expected 1 (num_clips=1, num_views=1)"
                )
            clips.append(sample["clips"][0])  # (3, T, H, W)
            labels.append(int(sample["label"]))
            if len(clips) == batch_size:
                flush()
    flush()
    for encoder, mode in zip(encoders, modes, strict=True):
        encoder.train(mode)
    return [torch.cat(f) for f in feats], torch.as_tensor(labels, dtype=torch.int64)


class _LinearProbe(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(dim=1)  # (B, N, D) -> (B, D)
        return self.head(F.layer_norm(x, (x.size(-1),)))


class _TemporalProbe(nn.Module):
    def __init__(self, dim: int, num_classes: int, time_slots: int) -> None:
        super().__init__()
        self.time_slots = time_slots
        self.head = nn.Linear(dim * time_slots, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        if n % self.time_slots:
            raise ValueError(f"temporal probe: {n} tokens are not a multiple of time_slots={self.time_slots}")
        x = x.reshape(b, self.time_slots, n // self.time_slots, d).mean(dim=2)  # (B, T', D): token id t·H'W' + s
        return self.head(F.layer_norm(x, (d,)).flatten(1))  # (B, T'·D) -> (B, C)


class _AttentiveProbe(nn.Module):
    def __init__(self, dim: int, num_classes: int, num_heads: int) -> None:
        super().__init__()
        from jepa.probes.pooler import AttentivePooler

        self.pooler = AttentivePooler(dim, num_queries=1, num_heads=num_heads, depth=1)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooler(x).squeeze(1))  # (B, N, D) -> (B, 1, D) -> (B, C)


def train_probe(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    probe: ProbeKind = "linear",
    steps: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 1e-3,
    num_heads: int = 4,
    seed: int = 0,
    time_slots: int = 1,
) -> FrozenProbeResult:
    """Train a probe on cached features with full-batch AdamW and report top-1 on both splits.

    Args:
        train, val: ``(features (N, K, D), labels (N,))``, all on one device (the probe is trained there).
        num_classes: C.
        probe: ``"linear"`` or ``"attentive"`` (see the module docstring).
        steps, lr, weight_decay: full-batch AdamW steps on the training features.
        num_heads: heads of the attentive pooler (must divide D).
        seed: probe initialisation.
        time_slots: temporal token slots ``T' = frames / tubelet`` (``"temporal"`` probe).

    Returns:
        :class:`FrozenProbeResult` (``top1`` on ``val``).
    """
    x_train, y_train = train
    x_val, y_val = val
    if x_train.ndim != 3 or x_val.ndim != 3 or x_train.shape[-1] != x_val.shape[-1]:
        raise ValueError(
            f"train_probe: features must be (N, K, D) with equal D, got {tuple(x_train.shape)} and {tuple(x_val.shape)}"
        )
    dim = x_train.shape[-1]
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    if probe == "linear":
        model: nn.Module = _LinearProbe(dim, num_classes)
    elif probe == "temporal":
        model = _TemporalProbe(dim, num_classes, time_slots)
    elif probe == "attentive":
        model = _AttentiveProbe(dim, num_classes, num_heads)
    else:
        raise ValueError(f"train_probe: probe must be 'linear', 'temporal' or 'attentive', got {probe!r}")
    torch.random.set_rng_state(generator_state)  # leave the caller's global RNG untouched
    model.to(x_train.device)  # initialised on the CPU (same weights on every device), trained where the features are
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(steps):
        loss = F.cross_entropy(model(x_train), y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        train_top1 = (model(x_train).argmax(-1) == y_train).float().mean().item()
        top1 = (model(x_val).argmax(-1) == y_val).float().mean().item()
    return FrozenProbeResult(
        top1=top1,
        train_top1=train_top1,
        num_train=len(y_train),
        num_val=len(y_val),
        num_classes=num_classes,
        probe=probe,
    )


def frozen_probe(
    encoder: nn.Module,
    train_list: str | Sequence[tuple[str, int]],
    val_list: str | Sequence[tuple[str, int]],
    num_classes: int,
    frames_per_clip: int = 8,
    fps: float | None = 4.0,
    frame_step: int | None = None,
    crop_size: int = 64,
    probe: ProbeKind = "linear",
    train_repeats: int = 2,
    steps: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 1e-3,
    num_heads: int = 4,
    seed: int = 0,
) -> FrozenProbeResult:
    """Top-1 of a light probe trained on the frozen features of ``encoder``.

    Args:
        encoder: a video encoder ``(B, 3, T, H, W) → (B, N, D)`` (e.g. the target encoder of a pretraining run).
        train_list, val_list: CSV / npy sample lists (``path label``) or parsed ``[(path, label), …]``.
        num_classes: C.
        frames_per_clip, fps, frame_step: clip sampling (exactly one of ``fps`` / ``frame_step``).
        crop_size: :class:`~jepa.data.transforms.EvalTransform` centre crop.
        probe: ``"linear"``, ``"temporal"`` or ``"attentive"``.
        train_repeats: clips per training video (random positions, seeded by ``seed``); validation uses one.
        steps, lr, weight_decay, num_heads: see :func:`train_probe`.
        seed: seeds clip sampling and the probe.

    Returns:
        :class:`FrozenProbeResult`.
    """
    return frozen_probes(
        {"encoder": encoder}, train_list, val_list, num_classes, frames_per_clip=frames_per_clip, fps=fps,
        frame_step=frame_step, crop_size=crop_size, probes={probe: (steps, lr)}, train_repeats=train_repeats,
        weight_decay=weight_decay, num_heads=num_heads, seed=seed,
    )["encoder"][probe]  # fmt: skip


def frozen_probes(
    encoders: Mapping[str, nn.Module],
    train_list: str | Sequence[tuple[str, int]],
    val_list: str | Sequence[tuple[str, int]],
    num_classes: int,
    probes: Mapping[ProbeKind, tuple[int, float]],
    frames_per_clip: int = 8,
    fps: float | None = 4.0,
    frame_step: int | None = None,
    crop_size: int = 64,
    train_repeats: int = 2,
    weight_decay: float = 1e-3,
    num_heads: int = 4,
    seed: int = 0,
) -> dict[str, dict[str, FrozenProbeResult]]:
    """Several light probes on several frozen encoders: ``{name: encoder}``, ``{kind: (steps, lr)}`` →
    ``{name: {kind: result}}``.

    Every clip is decoded once and encoded by every encoder (all see the same clips); each encoder's features are
    shared by its probes. The other arguments are those of :func:`frozen_probe`.
    """
    (results,) = frozen_probes_per_train_set(
        encoders, [train_list], val_list, num_classes, probes, frames_per_clip=frames_per_clip, fps=fps,
        frame_step=frame_step, crop_size=crop_size, train_repeats=train_repeats, weight_decay=weight_decay,
        num_heads=num_heads, seed=seed,
    )  # fmt: skip
    return results


def frozen_probes_per_train_set(
    encoders: Mapping[str, nn.Module],
    train_lists: Sequence[str | Sequence[tuple[str, int]]],
    val_list: str | Sequence[tuple[str, int]],
    num_classes: int,
    probes: Mapping[ProbeKind, tuple[int, float]],
    frames_per_clip: int = 8,
    fps: float | None = 4.0,
    frame_step: int | None = None,
    crop_size: int = 64,
    train_repeats: int = 2,
    weight_decay: float = 1e-3,
    num_heads: int = 4,
    seed: int = 0,
) -> list[dict[str, dict[str, FrozenProbeResult]]]:
    """:func:`frozen_probes` for several training sets (e.g. 4, 16, 64 labelled videos per class) against one
    validation set, whose clips are decoded and encoded once. Entry ``i`` equals
    ``frozen_probes(encoders, train_lists[i], val_list, …)``.
    """
    sampling = ClipSampling(
        frames_per_clip=frames_per_clip, fps=fps, frame_step=None if fps is not None else frame_step
    )
    transform = EvalTransform(crop_size=crop_size)

    def dataset(samples: str | Sequence[tuple[str, int]], split: str, offset: int) -> VideoClipDataset:
        return VideoClipDataset(samples, sampling, transform, seed=seed + offset, name=f"frozen_probe {split}")

    models = list(encoders.values())
    val_feats, val_labels = extract_features_many(models, dataset(val_list, "val", 1), repeats=1)
    all_results: list[dict[str, dict[str, FrozenProbeResult]]] = []
    for train_list in train_lists:
        train_feats, train_labels = extract_features_many(
            models, dataset(train_list, "train", 0), repeats=train_repeats
        )
        results: dict[str, dict[str, FrozenProbeResult]] = {}
        for name, encoder, train, val in zip(encoders, models, train_feats, val_feats, strict=True):
            tubelet = int(getattr(getattr(encoder, "config", None), "tubelet_size", 2))
            results[name] = {
                kind: train_probe(
                    (train, train_labels),
                    (val, val_labels),
                    num_classes,
                    probe=kind,
                    steps=steps,
                    lr=lr,
                    weight_decay=weight_decay,
                    num_heads=num_heads,
                    seed=seed,
                    time_slots=frames_per_clip // tubelet,
                )
                for kind, (steps, lr) in probes.items()
            }
        all_results.append(results)
    return all_results
