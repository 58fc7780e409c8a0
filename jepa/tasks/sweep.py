"""Shared base of the tasks that train a sweep of attentive-probe heads on frozen features.

Spec: probes.md §2 (sweep), §7 (loop); anticipation.md §5. :class:`~jepa.tasks.probe.ProbeTask` and
:class:`~jepa.tasks.anticipation.AnticipationTask` keep their own constructors, features, losses and metrics; this
base holds what they share: the pooler settings and sweep hyper-parameters, AdamW with per-head schedules, the best
head (buffer ``best_head`` + one score buffer) and its export as an official probe file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from jepa.probes.layouts import official_probe_state_dict, save_official_probe
from jepa.probes.sweep import ProbeSweep, sweep_hparams
from jepa.tasks.base import BaseTask


class SweepProbeTask(BaseTask):
    """A :class:`BaseTask` training the heads of one :class:`~jepa.probes.sweep.ProbeSweep` (``self.sweep``).

    Subclasses call :meth:`init_sweep` in ``__init__`` before ``super().__init__``, build ``self.sweep`` in
    ``configure_models`` (or later) and call :meth:`register_best_head` there, then record the best head of each
    validation with :meth:`keep_best_head`. Class attributes:

    - ``task_name``: the name in messages (``"ProbeTask"``), fixed so that subclasses keep their parent's messages.
    - ``best_score_buffer``: the buffer holding the best head's validation score (``"best_top1"``), a checkpoint key.
    - ``best_score_label``: how the export log line names that score (``"val top-1"``).
    """

    task_name: ClassVar[str] = "SweepProbeTask"
    best_score_buffer: ClassVar[str] = "best_score"
    best_score_label: ClassVar[str] = "val score"

    sweep: ProbeSweep | None
    best_head: torch.Tensor

    # ------------------------------------------------------------------ construction
    def init_sweep(
        self,
        default_lrs: Sequence[float],
        default_weight_decays: Sequence[float],
        *,
        probe_num_heads: int,
        probe_depth: int,
        probe_norm_eps: float,
        probe_activation_checkpointing: bool,
        probe_stacked: bool,
        lrs: Iterable[float] | None,
        weight_decays: Iterable[float] | None,
        start_lr: float | None,
        final_lr: float,
        final_weight_decay: float | None,
        warmup_epochs: float,
        heads: Sequence[Mapping[str, float]] | None,
        betas: tuple[float, float],
        eps: float,
        predict_top_k: int,
        export_best_probe: str | None,
        fused_adamw: bool | None = None,
    ) -> None:
        """Store the constructor arguments shared by sweep tasks (called before ``BaseTask.__init__``).

        Sets ``probe_kwargs`` (the :class:`~jepa.probes.pooler.AttentivePooler` settings given to every head),
        ``probe_stacked``, ``head_hparams`` (explicit ``heads`` first, then the ``lrs × weight_decays`` grid;
        ``None`` lists take the task's defaults), ``betas``, ``eps``, ``fused_adamw``, ``predict_top_k`` and
        ``export_best_probe``.

        Raises:
            ValueError: the sweep would have no head.
        """
        self.probe_kwargs = {
            "num_heads": probe_num_heads,
            "depth": probe_depth,
            "norm_eps": probe_norm_eps,
            "use_activation_checkpointing": probe_activation_checkpointing,
        }
        self.probe_stacked = probe_stacked
        self.head_hparams = sweep_hparams(
            self.task_name,
            heads,
            default_lrs if lrs is None else lrs,
            default_weight_decays if weight_decays is None else weight_decays,
            start_lr=start_lr,
            final_lr=final_lr,
            final_weight_decay=final_weight_decay,
            warmup_epochs=warmup_epochs,
        )
        self.betas = tuple(betas)
        self.eps = eps
        self.fused_adamw = fused_adamw
        self.predict_top_k = predict_top_k
        self.export_best_probe = export_best_probe

    def register_best_head(self) -> None:
        """Register ``best_head`` (0) and the ``best_score_buffer`` (-1): saved with checkpoints, so ``predict``
        and export use the best head after reloading."""
        self.register_buffer("best_head", torch.zeros((), dtype=torch.long))
        self.register_buffer(self.best_score_buffer, torch.full((), -1.0))

    def keep_best_head(self, index: int, score: float) -> None:
        """Record head ``index`` as the best, with its validation ``score``."""
        self.best_head.fill_(index)
        getattr(self, self.best_score_buffer).fill_(score)

    def load_official_heads(self, source: str, index: int | None = None) -> int:
        """Load an official probe file (``classifiers`` list, ``module.`` keys) into the heads; returns the count.

        ``index`` None: ``classifiers[i]`` → head ``i`` for as many as both have (official: ``zip(classifiers,
        heads)``); otherwise ``classifiers[index]`` → head 0.
        """
        from jepa.hub.pretrained import read_torch
        from jepa.hub.sources import resolve_source

        assert self.sweep is not None
        raw = read_torch(resolve_source(source).path)
        if index is not None:
            states = [official_probe_state_dict(raw, index)]
        else:
            count = len(raw["classifiers"]) if isinstance(raw, dict) and "classifiers" in raw else 1
            states = [official_probe_state_dict(raw, i) for i in range(min(count, len(self.sweep)))]
        for head, state in zip(self.sweep.heads, states, strict=False):
            head.load_state_dict(state, strict=True)
        return len(states)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """One AdamW, one param group per head (:meth:`jepa.probes.sweep.ProbeSweep.build_optimizer`)."""
        assert self.sweep is not None
        trainer = self.trainer
        return self.sweep.build_optimizer(
            trainer.estimated_stepping_batches, trainer.max_epochs, self.betas, self.eps, fused=self.fused_adamw
        )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Official schedulers step before the forward: the k-th iteration uses value(k).
        self.sweep.apply_schedules(self.trainer.optimizers[0], self.global_step + 1)

    # ------------------------------------------------------------------ export
    def best_probe_state_dict(self) -> dict[str, torch.Tensor]:
        """Prefix-free official-layout state dict of the best head."""
        return {k: v.detach().cpu() for k, v in self.sweep.heads[int(self.best_head)].state_dict().items()}

    def export_probe(self, path: str | os.PathLike[str], all_heads: bool = False) -> Path:
        """Write the best head (or every head, best first) as an official probe file (``classifiers`` list)."""
        best = int(self.best_head)
        order = [best] + [i for i in range(len(self.sweep)) if i != best] if all_heads else [best]
        states = [self.sweep.heads[i].state_dict() for i in order]
        epoch = self.current_epoch if self._trainer is not None else 0
        return save_official_probe(path, states, epoch=epoch)

    def on_fit_end(self) -> None:
        if self.export_best_probe and self.global_rank == 0:
            path = self.export_probe(self.export_best_probe)
            score = float(getattr(self, self.best_score_buffer))
            # The subclass's module logger, as when each task logged this line itself.
            logging.getLogger(type(self).__module__).info(
                "%s: best head %d (%s %.2f) written to %s",
                self.task_name,
                int(self.best_head),
                self.best_score_label,
                score,
                path,
            )
