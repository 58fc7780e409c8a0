"""V-JEPA 2-AC post-training: an action-conditioned predictor on a frozen encoder (spec: ac_planning.md §3–§5).

Per batch (clips ``(B, 3, T, H, W)``, actions ``(B, T−1, 7)``, states ``(B, T, 7)``):

1. ``h = norm(encoder(each frame as a duplicated 2-frame clip))`` → ``(B, T·N, D)``, once, without gradients.
2. Teacher forcing: ``ẑ_1..T−1 = norm(P(h_0..T−2, a_0..T−2, s_0..T−2))``, ``L_tf = mean |ẑ − h_1..T−1|``.
3. Rollout (``auto_steps`` k, official post-fix form): ``z = [h_0, ẑ_1]``; for n = 1 … k−1 append the last frame of
   ``norm(P(z, a_0..n, s_0..n))``; ``L_ro = mean |z_1..k − h_1..k|`` (gradients through every step).
4. ``loss = L_tf + L_ro``; AdamW with a WSD learning-rate schedule, constant weight decay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from jepa.optim import WSDSchedule, apply_schedules, official_param_groups
from jepa.predictors.action_conditioned import ACPredictor, ACPredictorConfig
from jepa.tasks.base import BaseTask, EncoderSpec, build_encoder

RolloutForm = Literal["fixed", "pre_fix"]


def feature_norm(x: torch.Tensor) -> torch.Tensor:
    """Non-affine LayerNorm over the feature axis."""
    return F.layer_norm(x, (x.shape[-1],))


class ActionConditionedTask(BaseTask):
    """Train an :class:`~jepa.predictors.action_conditioned.ACPredictor` on a frozen video encoder.

    Args:
        encoder: registry name, checkpoint source or module (frozen; official: ``vitg.pt``'s ``target_encoder``).
        encoder_overrides: ``EncoderConfig`` fields for a registry name.
        pretrained: weights for a registry name.
        checkpoint_key: top-level key of an official file (default ``target_encoder``).
        predictor: a ready predictor module, or ``None`` to build one.
        predictor_overrides: :class:`ACPredictorConfig` fields; ``encoder_dim``, ``img_size``, ``patch_size``
            default to the encoder's.
        auto_steps: rollout steps of the rollout loss (official 2; 1 disables it).
        rollout_form: ``"fixed"`` (after commit 93366fe: second context frame = teacher-forced ẑ_1) or
            ``"pre_fix"`` (teacher-forced prediction of frame 2).
        ipe / epochs / warmup_epochs / anneal_epochs: WSD lengths in iterations (official 300 / 315 / 15 / 15).
        start_lr / lr / final_lr: WSD values (official 7.5e-5 / 4.25e-4 / 0).
        weight_decay: constant (0.04).
        betas / eps: AdamW.
        activation_checkpointing: checkpoint predictor blocks.
        save_frozen: keep the frozen encoder in checkpoints (needed when it is a random-init encoder, e.g. the
            simulator recipe, so that planning rebuilds the same features).
    """

    def __init__(
        self,
        encoder: EncoderSpec = "vjepa2_vitg_256",
        encoder_overrides: dict[str, Any] | None = None,
        pretrained: bool | str = False,
        checkpoint_key: str | None = None,
        predictor: nn.Module | None = None,
        predictor_overrides: dict[str, Any] | None = None,
        auto_steps: int = 2,
        rollout_form: RolloutForm = "fixed",
        ipe: int = 300,
        epochs: float = 315,
        warmup_epochs: float = 15,
        anneal_epochs: float = 15,
        start_lr: float = 7.5e-5,
        lr: float = 4.25e-4,
        final_lr: float = 0.0,
        weight_decay: float = 0.04,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        activation_checkpointing: bool = False,
        save_frozen: bool = False,
    ) -> None:
        if auto_steps < 1:
            raise ValueError(f"ActionConditionedTask: auto_steps must be >= 1, got {auto_steps}")
        if rollout_form not in ("fixed", "pre_fix"):
            raise ValueError(f"ActionConditionedTask: rollout_form must be 'fixed' or 'pre_fix', got {rollout_form!r}")
        self._build_args = {
            "encoder": encoder,
            "encoder_overrides": encoder_overrides,
            "pretrained": pretrained,
            "checkpoint_key": checkpoint_key,
            "predictor": predictor,
            "predictor_overrides": predictor_overrides,
            "activation_checkpointing": activation_checkpointing,
        }
        super().__init__(save_frozen=save_frozen)
        ignore = [
            name for name, value in (("encoder", encoder), ("predictor", predictor)) if isinstance(value, nn.Module)
        ]
        self.save_hyperparameters(ignore=ignore or None)
        self.auto_steps, self.rollout_form = auto_steps, rollout_form
        total = int(epochs * ipe)
        self.lr_schedule = WSDSchedule(
            int(warmup_epochs * ipe), int(anneal_epochs * ipe), total, start_lr, lr, final_lr
        )
        self.weight_decay, self.betas, self.eps = weight_decay, tuple(betas), eps

    # ------------------------------------------------------------------ models
    def configure_models(self) -> None:
        args = self._build_args
        encoder = build_encoder(args["encoder"], args["pretrained"], args["encoder_overrides"], args["checkpoint_key"])
        self.register_frozen("encoder", encoder)
        if args["predictor"] is not None:
            self.predictor = args["predictor"]
        else:
            values: dict[str, Any] = {}
            cfg = getattr(encoder, "config", None)
            if cfg is not None:
                values = {"encoder_dim": cfg.embed_dim, "img_size": cfg.img_size, "patch_size": cfg.patch_size}
            values.update(args["predictor_overrides"] or {})
            self.predictor = ACPredictor(ACPredictorConfig(**values))
        if args["activation_checkpointing"]:
            self.predictor.set_grad_checkpointing(True)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = official_param_groups({"predictor": self.predictor})
        for group in groups:
            if not group.get("WD_exclude", False):
                group["weight_decay"] = self.weight_decay
        return torch.optim.AdamW(groups, lr=self.lr_schedule.value(1), betas=self.betas, eps=self.eps)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        lr = self.lr_schedule.value(self.trainer.global_step + 1)
        for optimizer in self.trainer.optimizers:
            apply_schedules(optimizer, lr=lr)

    # ------------------------------------------------------------------ step
    @torch.no_grad()
    def encode_frames(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` → ``(B, T·N, D)``: every frame as a duplicated 2-frame clip, LayerNormed."""
        batch, channels, frames, height, width = clips.shape
        x = clips.transpose(1, 2).reshape(batch * frames, channels, 1, height, width).expand(-1, -1, 2, -1, -1)
        h = self.encoder(x)  # (B·T, N, D)
        return feature_norm(h.reshape(batch, -1, h.shape[-1]).float())  # (B, T·N, D)

    def compute_loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Teacher-forcing + rollout L1 of one batch → ``(loss, {"loss_tf", "loss_ro"})``.

        ``batch``: ``clip`` (or ``clips``) ``(B, 3, T, H, W)`` — or ``features`` ``(B, T·N, D)``, precomputed
        normalised encoder features — plus ``actions (B, T−1, 7)`` and ``states (B, T, 7)``.
        """
        actions, states = batch["actions"], batch["states"]
        frames = states.shape[1]
        if actions.shape[1] != frames - 1:
            raise ValueError(
                f"ActionConditionedTask: {frames} states need actions (B, {frames - 1}, 7), got {tuple(actions.shape)}"
            )
        if "features" in batch:  # precomputed normalised frozen-encoder features (B, T·N, D)
            h = batch["features"]
        else:
            clips = batch["clips"] if "clips" in batch else batch["clip"]
            if clips.shape[2] != frames:
                raise ValueError(f"ActionConditionedTask: clips have {clips.shape[2]} frames but states {frames}")
            h = self.encode_frames(clips)
        n = h.shape[1] // frames  # tokens per frame
        step = lambda z, a, s: feature_norm(self.predictor(z, a, s))  # noqa: E731
        z_tf = step(h[:, :-n], actions, states[:, :-1])  # (B, (T−1)·N, D): predictions of frames 1 … T−1
        loss_tf = (z_tf - h[:, n:]).abs().mean()
        stats = {"loss_tf": loss_tf.detach()}
        loss = loss_tf
        if self.auto_steps > 1:
            k = min(self.auto_steps, frames - 1)
            second = z_tf[:, :n] if self.rollout_form == "fixed" else z_tf[:, n : 2 * n]
            z = torch.cat([h[:, :n], second], dim=1)
            for m in range(1, k):
                z = torch.cat([z, step(z, actions[:, : m + 1], states[:, : m + 1])[:, -n:]], dim=1)
            loss_ro = (z[:, n:] - h[:, n : (k + 1) * n]).abs().mean()
            stats["loss_ro"] = loss_ro.detach()
            loss = loss + loss_ro
        return loss, stats

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss, stats = self.compute_loss(batch)
        batch_size = batch["actions"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        for name, value in stats.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        if "skipped" in batch:
            self.log("data/skipped", torch.as_tensor(batch["skipped"]).float(), reduce_fx="sum", batch_size=batch_size)
        self.log_throughput("train/clips_per_s", batch_size)
        return loss
