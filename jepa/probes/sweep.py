"""Multi-head hyper-parameter sweep: N independent probes trained side by side on the same frozen features.

Spec: probes.md §2. Each head has its own LR (linear warmup from ``start_lr`` then cosine to ``final_lr`` over
``epochs·ipe − warmup``) and weight decay (cosine from ``weight_decay`` to ``final_weight_decay`` over
``epochs·ipe``), with AdamW on **all** its parameters in one decayed group. Putting every head in its own param
group of one AdamW is numerically the same as one optimizer per head (AdamW is per-parameter); the encoder runs once
per batch and its features feed every head.

``stacked=True`` runs same-architecture :class:`~jepa.probes.classifier.AttentiveClassifier` heads as head-batched
matmuls (:mod:`jepa.probes.batched`); each head keeps its own parameters, param group and state-dict keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import torch
from torch import nn

from jepa.optim.schedules import CosineWDSchedule, WarmupCosineSchedule
from jepa.probes.batched import stacked_classifier_forward, supports_stacked


@dataclass(frozen=True)
class HeadHParams:
    """Optimisation settings of one sweep head (one entry of the official ``multihead_kwargs``).

    Attributes:
        lr: peak learning rate.
        weight_decay: starting (reference) weight decay.
        start_lr: LR at step 0 of the warmup (default ``lr``).
        final_lr: LR at the end of the cosine (official 0).
        final_weight_decay: WD at the end (default ``weight_decay``: constant).
        warmup_epochs: warmup length in epochs (0 in every video config; 5 for IN1K heads 1–20).
    """

    lr: float
    weight_decay: float
    start_lr: float | None = None
    final_lr: float = 0.0
    final_weight_decay: float | None = None
    warmup_epochs: float = 0.0

    @property
    def initial_lr(self) -> float:
        return self.lr if self.start_lr is None else self.start_lr

    @property
    def end_weight_decay(self) -> float:
        return self.weight_decay if self.final_weight_decay is None else self.final_weight_decay

    def describe(self) -> str:
        return f"lr={self.lr:g} wd={self.weight_decay:g}"


def sweep_grid(lrs: Iterable[float], weight_decays: Iterable[float], **common: Any) -> list[HeadHParams]:
    """The Cartesian product ``lrs × weight_decays`` (LR-major, as the official configs list them).

    ``common``: other :class:`HeadHParams` fields shared by every head (``start_lr``, ``warmup_epochs`` …).
    """
    return [HeadHParams(lr=lr, weight_decay=wd, **common) for lr, wd in product(lrs, weight_decays)]


def sweep_hparams(
    owner: str,
    heads: Sequence[Mapping[str, float]] | None,
    lrs: Iterable[float],
    weight_decays: Iterable[float],
    **common: Any,
) -> list[HeadHParams]:
    """The heads of a task's sweep: explicitly listed ``heads`` first, then the ``lrs × weight_decays`` grid.

    Args:
        owner: task name for the error message.
        heads: dicts of :class:`HeadHParams` fields (e.g. the 21 ImageNet heads), or ``None``.
        lrs, weight_decays: the grid (may be empty when ``heads`` are given).
        common: fields shared by the grid heads (``start_lr``, ``final_lr``, ``warmup_epochs`` …).

    Raises:
        ValueError: the sweep would have no head.
    """
    hparams = [HeadHParams(**dict(h)) for h in (heads or [])] + sweep_grid(lrs, weight_decays, **common)
    if not hparams:
        raise ValueError(f"{owner}: the sweep is empty (no `heads` and an empty `lrs` × `weight_decays` grid)")
    return hparams


@dataclass(frozen=True)
class HeadSchedule:
    """LR and WD schedules of one head for a run of ``epochs`` × ``ipe`` iterations.

    ``value`` methods take the official 1-based step (schedulers are stepped before each forward).
    """

    lr: WarmupCosineSchedule
    wd: CosineWDSchedule

    @classmethod
    def build(cls, hparams: HeadHParams, epochs: float, ipe: int) -> HeadSchedule:
        total = int(epochs * ipe)
        return cls(
            lr=WarmupCosineSchedule(
                warmup_steps=int(hparams.warmup_epochs * ipe),
                start=hparams.initial_lr,
                ref=hparams.lr,
                T_max=total,
                final=hparams.final_lr,
            ),
            wd=CosineWDSchedule(ref=hparams.weight_decay, final=hparams.end_weight_decay, T_max=total),
        )


class ProbeSweep(nn.Module):
    """``N`` probes (any ``nn.Module`` tokens → logits) with their own hyper-parameters.

    Args:
        heads: the probes (``heads.{i}`` in the state dict).
        hparams: one :class:`HeadHParams` per head.
        stacked: run the heads head-batched (:func:`~jepa.probes.batched.stacked_classifier_forward`) when they are
            :class:`~jepa.probes.classifier.AttentiveClassifier` of one architecture; otherwise one after another.
            Same results up to float rounding.

    ``forward(tokens (B, N, D))`` → list of ``N_heads`` logits ``(B, C)``.
    """

    def __init__(self, heads: Sequence[nn.Module], hparams: Sequence[HeadHParams], stacked: bool = False) -> None:
        super().__init__()
        if len(heads) != len(hparams):
            raise ValueError(f"ProbeSweep: {len(heads)} heads but {len(hparams)} hyper-parameter entries")
        if not heads:
            raise ValueError("ProbeSweep: at least one head is needed")
        self.heads = nn.ModuleList(heads)
        self.head_hparams = list(hparams)
        self.stacked = stacked
        self.schedules: list[HeadSchedule] = []  # set by configure_schedules once the run length is known

    @classmethod
    def build(
        cls, factory: Callable[[], nn.Module], hparams: Sequence[HeadHParams], stacked: bool = False
    ) -> ProbeSweep:
        """One head per entry of ``hparams``, each from a fresh ``factory()`` call (independent random init)."""
        return cls([factory() for _ in hparams], hparams, stacked=stacked)

    def __len__(self) -> int:
        return len(self.heads)

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Tokens ``(B, N, D)`` → list of logits ``(B, C)``, one per head."""
        if self.stacked and supports_stacked(self.heads):
            return list(stacked_classifier_forward(list(self.heads), tokens).unbind(0))
        return [head(tokens) for head in self.heads]

    def forward_stacked(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, N, D)`` → logits ``(N_heads, B, C)`` computed head-batched.

        Raises:
            TypeError: the heads are not :class:`~jepa.probes.classifier.AttentiveClassifier` of one architecture
                with attention biases.
        """
        if not supports_stacked(self.heads):
            kinds = sorted({type(h).__name__ for h in self.heads})
            raise TypeError(
                f"ProbeSweep.forward_stacked: needs AttentiveClassifier heads of one architecture (qkv_bias=True); "
                f"got {kinds}"
            )
        return stacked_classifier_forward(list(self.heads), tokens)

    # ------------------------------------------------------------------ optimisation
    def param_groups(self) -> list[dict[str, Any]]:
        """One AdamW param group per head: all its parameters, decayed (official), initial LR / WD set."""
        return [
            {"params": list(head.parameters()), "lr": hp.initial_lr, "weight_decay": hp.weight_decay, "head": index}
            for index, (head, hp) in enumerate(zip(self.heads, self.head_hparams, strict=True))
        ]

    def configure_schedules(self, epochs: float, ipe: int) -> list[HeadSchedule]:
        """Build (and keep) every head's schedules for ``epochs`` × ``ipe`` iterations."""
        if ipe < 1:
            raise ValueError(f"ProbeSweep.configure_schedules: iterations per epoch must be >= 1, got {ipe}")
        self.schedules = [HeadSchedule.build(hp, epochs, ipe) for hp in self.head_hparams]
        return self.schedules

    def build_optimizer(
        self,
        total_steps: int,
        max_epochs: int | None,
        betas: tuple[float, float],
        eps: float,
        fused: bool | None = None,
    ) -> torch.optim.Optimizer:
        """One AdamW over every head's param group, with each head's schedules laid over ``total_steps``.

        Args:
            total_steps: optimizer steps of the run (Lightning's ``trainer.estimated_stepping_batches``).
            max_epochs: epochs of the run (``None`` or ``<= 0``: one epoch of ``total_steps``).
            betas, eps: AdamW settings shared by the heads.
            fused: torch's fused AdamW kernel (``None``: torch's default implementation, as official).
        """
        epochs = max_epochs if max_epochs and max_epochs > 0 else 1
        self.configure_schedules(epochs=epochs, ipe=max(1, int(total_steps) // epochs))
        return torch.optim.AdamW(self.param_groups(), betas=betas, eps=eps, fused=fused)

    def apply_schedules(self, optimizer: torch.optim.Optimizer, step: int) -> list[tuple[float, float]]:
        """Write each head's ``(lr, wd)`` at 1-based ``step`` into its param group (matched by the ``head`` key).

        Returns:
            ``[(lr, wd)]`` per head.
        """
        if not self.schedules:
            raise RuntimeError("ProbeSweep.apply_schedules: call configure_schedules(epochs, ipe) first")
        values = []
        for group in optimizer.param_groups:
            if "head" not in group:
                continue
            schedule = self.schedules[group["head"]]
            group["lr"] = schedule.lr.value(step)
            group["weight_decay"] = schedule.wd.value(step)
        for schedule in self.schedules:
            values.append((schedule.lr.value(step), schedule.wd.value(step)))
        return values
