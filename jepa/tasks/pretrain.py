"""V-JEPA 2 masked latent pretraining (mask denoising in representation space; spec: pretraining.md §1–§6).

Batches come from :class:`jepa.data.masks.MaskCollator`: a list over fpc groups of
``(collated_group, [masks_enc per mask config], [masks_pred per mask config])`` with ``collated_group["clips"]``
a list of ``(B, 3, T, H, W)`` clips (the first is used, as the official loader with one clip per sample).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from jepa.checkpoints import checkpoint_state_keys, load_lightning_checkpoint
from jepa.encoders.layers import Block
from jepa.encoders.masking import apply_masks
from jepa.losses import variance_covariance_penalty
from jepa.metrics.rank import effective_rank
from jepa.optim import (
    CosineWDSchedule,
    LinearDecaySchedule,
    MomentumSchedule,
    WarmupCosineSchedule,
    apply_schedules,
    ema_update,
    official_param_groups,
    schedule_length,
)
from jepa.predictors import MaskPredictor, PredictorConfig
from jepa.tasks.base import BaseTask, EncoderSpec, build_encoder

LRSchedule = Literal["warmup_cosine", "linear_decay"]
DataResume = Literal["replay", "official"]
STATE_KEY = "jepa_pretrain"  # entry of Lightning checkpoints holding the data-stream position
TMaxMode = Literal["official", "corrected"]
Group = tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]


class PretrainTask(BaseTask):
    """Context encoder + EMA target encoder + mask predictor, trained with the official V-JEPA 2 step.

    Per optimizer step (``s = global_step + 1``, official: the first step uses schedule step 1):

    1. LR / WD written into the optimizer from their schedules (start of the step).
    2. For every fpc group i: ``h_i = layer_norm(target_encoder(clips_i))`` (no affine, no grad); for every mask
       config j: ``z = encoder(clips_i, [masks_enc_ij])``, ``p = predictor(z, masks_enc_ij, masks_pred_ij,
       mask_index=i)``; ``loss_ij = mean(|p − gather(h_i, masks_pred_ij)|^e) / e``.
    3. ``loss = mean over (i, j)``; AdamW step (no clipping unless the Trainer adds it).
    4. EMA ``θ_t ← m θ_t + (1 − m) θ_c`` with ``m = momentum(s)`` after every real optimizer step (gradient
       accumulation: once per accumulated step).

    Args:
        encoder: registry name (``"vit_large"``), checkpoint source, or module (see
            :func:`jepa.tasks.base.build_encoder`).
        encoder_overrides: ``EncoderConfig`` fields for a registry name (``img_size``, ``num_frames``, …).
        pretrained: weights for a registry name (``False`` = random init, the pretraining default).
        predictor: a predictor module, or ``None`` to build a :class:`MaskPredictor`.
        predictor_overrides: ``PredictorConfig`` fields; ``encoder_dim``, ``patch_size``, ``tubelet_size``,
            ``img_size`` and ``num_frames`` default to the encoder's (384 wide, 12 blocks, 12 heads, 10 mask tokens
            otherwise — the released predictor; the official training code builds 2 × len(dataset_fpcs) tokens).
        ipe: iterations per "epoch" (300).
        epochs: schedule length in epochs (``T_max = int(ipe_scale·epochs·ipe)``).
        warmup_epochs: LR warmup in epochs (``warmup_cosine`` only).
        ipe_scale: official 1.25.
        start_lr / lr / final_lr: warmup start, reference and final LR.
        lr_schedule: ``"warmup_cosine"`` (main phase; ``final_lr == lr`` = warmup then constant) or
            ``"linear_decay"`` (cooldown, official ``is_anneal``).
        lr_t_max: ``"official"`` uses ``int(ipe_scale·epochs·ipe)`` for the LR schedule (QUIRK: a 40-epoch
            cooldown ends at ≈1.06e-4); ``"corrected"`` uses ``int(epochs·ipe)`` (the paper recipe, reaches
            ``final_lr``). WD and momentum schedules always use the official length.
        weight_decay / final_weight_decay: cosine WD schedule ends (0.04 → 0.04 = constant).
        ema: ``(start, final)`` EMA momentum, linear over the official length (0.99925 constant).
        betas / eps: AdamW.
        loss_exp: exponent ``e`` of the loss (1.0 = L1).
        variance_weight, covariance_weight: NOT part of V-JEPA 2 (0 = official, every paper recipe): add
            VICReg's variance and covariance terms of the context-encoder tokens
            (:func:`jepa.losses.variance_covariance_penalty`, averaged over (group, mask) pairs) with these weights,
            against the dimensional collapse of tiny, short runs (logged ``target_erank``).
        activation_checkpointing: checkpoint every block of encoder and predictor.
        compile: compile encoder, target encoder and predictor in place (``nn.Module.compile``, state-dict keys
            unchanged) with ``torch.compile(dynamic=True)`` when training is set up (after FSDP2 sharding). The
            token counts that change with every batch's masks stay symbolic: one graph per module, no recompiles.
            ``False`` = eager (the default); a mapping gives ``torch.compile`` keyword arguments instead.
        anneal_from: cooldown start (official ``anneal_ckpt``): a main-phase checkpoint, either a Lightning
            ``.ckpt`` of this task or an official ``.pt`` (``encoder`` / ``predictor`` / ``target_encoder`` / ``opt``).
            Encoder, predictor and target encoder are loaded strictly at construction and the optimizer state when
            training starts; the step counter starts at 0 (schedules not fast-forwarded). Ignored for the optimizer
            when ``fit(ckpt_path=...)`` resumes a cooldown run (official ``resume_anneal``).
        data_resume: how ``fit(ckpt_path=...)`` restores the data-stream position saved in the checkpoint
            (``checkpoint["jepa_pretrain"]``: batches consumed in the current loader epoch and in total).
            ``"replay"`` (exact): the restarted loader epoch is run through the real pipeline (decode, transform,
            mask collator) and the batches already trained on are discarded, so clips, masks (counters and the
            global-RNG box positions) and losses continue bit for bit — exact within the first loader epoch
            (infinite mixture streams, the quickstart); costs decoding those batches again (official
            ``skip_batches``). ``"official"``: only the mask-collator counters are fast-forwarded by the batches
            consumed (spec §10) and the loader starts a fresh iterator (cheap; not the same samples).
    """

    def __init__(
        self,
        encoder: EncoderSpec = "vit_large",
        encoder_overrides: dict[str, Any] | None = None,
        pretrained: bool | str = False,
        predictor: nn.Module | None = None,
        predictor_overrides: dict[str, Any] | None = None,
        ipe: int = 300,
        epochs: float = 800,
        warmup_epochs: float = 40,
        ipe_scale: float = 1.25,
        start_lr: float = 1e-4,
        lr: float = 5.25e-4,
        final_lr: float = 5.25e-4,
        lr_schedule: LRSchedule = "warmup_cosine",
        lr_t_max: TMaxMode = "official",
        weight_decay: float = 0.04,
        final_weight_decay: float = 0.04,
        ema: tuple[float, float] = (0.99925, 0.99925),
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        loss_exp: float = 1.0,
        activation_checkpointing: bool = False,
        compile: bool | dict[str, Any] = False,
        anneal_from: str | None = None,
        data_resume: DataResume = "replay",
        variance_weight: float = 0.0,
        covariance_weight: float = 0.0,
    ) -> None:
        if lr_schedule not in ("warmup_cosine", "linear_decay"):
            raise ValueError(
                f"PretrainTask: lr_schedule must be 'warmup_cosine' or 'linear_decay', got {lr_schedule!r}"
            )
        if lr_t_max not in ("official", "corrected"):
            raise ValueError(f"PretrainTask: lr_t_max must be 'official' or 'corrected', got {lr_t_max!r}")
        if predictor is not None and predictor_overrides:
            raise ValueError("PretrainTask: predictor_overrides apply to a built predictor, not to a given module")
        if data_resume not in ("replay", "official"):
            raise ValueError(f"PretrainTask: data_resume must be 'replay' or 'official', got {data_resume!r}")
        if loss_exp <= 0:
            raise ValueError(f"PretrainTask: loss_exp must be > 0, got {loss_exp}")
        if variance_weight < 0 or covariance_weight < 0:
            raise ValueError(
                f"PretrainTask: variance_weight and covariance_weight must be >= 0, got {variance_weight}, "
                f"{covariance_weight}"
            )
        # Plain dict: nn.Module refuses module attributes before __init__ (configure_models runs inside it).
        self._build_args: dict[str, Any] = {
            "encoder": encoder,
            "encoder_overrides": encoder_overrides,
            "pretrained": pretrained,
            "predictor": predictor,
            "predictor_overrides": predictor_overrides,
            "activation_checkpointing": activation_checkpointing,
        }
        super().__init__()
        ignore = [
            name for name, value in (("encoder", encoder), ("predictor", predictor)) if isinstance(value, nn.Module)
        ]
        self.save_hyperparameters(ignore=ignore or None)

        t_max = schedule_length(epochs, ipe, ipe_scale)
        lr_len = t_max if lr_t_max == "official" else int(epochs * ipe)
        if lr_schedule == "warmup_cosine":
            self.lr_schedule = WarmupCosineSchedule(int(warmup_epochs * ipe), start_lr, lr, lr_len, final_lr)
        else:
            self.lr_schedule = LinearDecaySchedule(lr, final_lr, lr_len)
        self.wd_schedule = CosineWDSchedule(weight_decay, final_weight_decay, t_max)
        self.momentum_schedule = MomentumSchedule.from_epochs(ema[0], ema[1], epochs, ipe, ipe_scale)
        self.betas, self.eps, self.loss_exp = tuple(betas), eps, loss_exp
        self.variance_weight, self.covariance_weight = variance_weight, covariance_weight
        if not isinstance(compile, (bool, Mapping)):
            raise TypeError(f"PretrainTask: compile must be a bool or a mapping of torch.compile options: {compile}")
        self.compile_options: dict[str, Any] | None = None  # torch.compile keyword arguments; None = eager
        if compile is not False:
            self.compile_options = {"dynamic": True} if compile is True else dict(compile)
        self.ema_updates = 0  # EMA updates done by this process (diagnostics and tests)
        self.data_resume = data_resume
        self._epoch_batches = 0  # batches taken from the loader in the current loader epoch
        self._total_batches = 0  # batches taken from the loader since the start of training
        self._replay_batches = 0  # set on resume ("replay"): batches to discard before training continues
        self._anneal_optimizer_state: dict[str, Any] | None = None
        if anneal_from is not None:
            states, self._anneal_optimizer_state = read_pretrain_checkpoint(anneal_from)
            for name in ("encoder", "predictor", "target_encoder"):
                getattr(self, name).load_state_dict(states[name], strict=True)

    # ------------------------------------------------------------------ models
    def configure_models(self) -> None:
        args = self._build_args
        self.encoder = build_encoder(args["encoder"], args["pretrained"], args["encoder_overrides"])
        if args["predictor"] is not None:
            self.predictor = args["predictor"]
        else:
            self.predictor = MaskPredictor(
                PredictorConfig(**self._predictor_config_values(args["predictor_overrides"]))
            )
        self.target_encoder = copy.deepcopy(self.encoder)  # θ̄ starts equal to θ
        self.target_encoder.requires_grad_(False)
        if args["activation_checkpointing"]:
            for module in (self.encoder, self.predictor):
                if not hasattr(module, "set_grad_checkpointing"):
                    raise TypeError(
                        f"PretrainTask: activation_checkpointing needs {type(module).__name__}.set_grad_checkpointing"
                    )
                module.set_grad_checkpointing(True)

    def configure_model(self) -> None:
        """Shard encoder, target encoder and predictor with FSDP2 under ``ModelParallelStrategy`` (no-op otherwise).

        Lightning calls this hook before the strategy sets the model up; only ``ModelParallelStrategy`` gives the
        module a device mesh (``self.device_mesh``), every other strategy (single device, DDP) leaves the task
        untouched. Every :class:`~jepa.encoders.layers.Block` and then each of the three modules becomes one FSDP2
        unit on the mesh's ``data_parallel`` dimension (``reshard_after_forward=True``: the target encoder, which
        has no backward, is resharded after its forward too). FSDP2 shards each parameter along dim 0, so the
        context and target encoders (same shapes) hold matching shards and the EMA runs locally; parameters keep
        their full shapes (DTensor), so the weight-decay rule (1-D / bias) is unchanged.

        Raises:
            TypeError: under Lightning's ``FSDPStrategy`` (FSDP1): its ``use_orig_params`` views are flat 1-D
                shards, so every parameter would be put in the no-decay group, and the two encoders' shards would
                not line up for the EMA.
            ValueError: a mesh with a ``tensor_parallel`` dimension larger than 1.

        Then compiles the three modules when ``compile`` is set (:meth:`compile_models`).
        """
        _refuse_fsdp1(self)
        self._shard()
        self.compile_models()

    def compile_models(self) -> None:
        """Compile encoder, target encoder and predictor in place with ``compile_options`` (no-op when off or done).

        Called by :meth:`configure_model`; call it yourself when driving :meth:`compute_loss` without a Trainer.
        """
        if self.compile_options is None:
            return
        for module in (self.encoder, self.target_encoder, self.predictor):
            if getattr(module, "_compiled_call_impl", None) is None:  # configure_model runs for every trainer call
                module.compile(**self.compile_options)

    def _shard(self) -> None:
        mesh = self._device_mesh
        if mesh is None:
            return
        from torch.distributed.fsdp import FSDPModule, fully_shard

        names = tuple(mesh.mesh_dim_names or ())
        tp_size = mesh["tensor_parallel"].size() if "tensor_parallel" in names else 1
        if tp_size != 1:
            raise ValueError(
                "PretrainTask: only data-parallel FSDP is supported; use ModelParallelStrategy(data_parallel_size="
                f"<world size>, tensor_parallel_size=1), got a tensor_parallel mesh of size {tp_size}"
            )
        dp_mesh = mesh["data_parallel"] if "data_parallel" in names else mesh
        for module in (self.encoder, self.target_encoder, self.predictor):
            if isinstance(module, FSDPModule):  # configure_model runs again for every trainer call
                continue
            for sub in module.modules():
                if isinstance(sub, Block):
                    fully_shard(sub, mesh=dp_mesh, reshard_after_forward=True)
            fully_shard(module, mesh=dp_mesh, reshard_after_forward=True)
        # Lightning passes strict_loading to the model AND the optimizer loader on resume; torch's strict optimizer
        # loading rejects parameters without state (the unused predictor mask tokens). on_load_checkpoint checks
        # the model keys of a full checkpoint instead.
        self.strict_loading = False

    def _predictor_config_values(self, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        enc_cfg = getattr(self.encoder, "config", None)
        values: dict[str, Any] = {}
        if enc_cfg is not None:
            values = {
                "encoder_dim": enc_cfg.embed_dim,
                "patch_size": enc_cfg.patch_size,
                "tubelet_size": enc_cfg.tubelet_size,
                "img_size": enc_cfg.img_size,
                "num_frames": enc_cfg.num_frames,
            }
        elif hasattr(self.encoder, "embed_dim"):
            values = {"encoder_dim": int(self.encoder.embed_dim)}
        values.update(overrides or {})
        if "encoder_dim" not in values:
            raise ValueError(
                f"PretrainTask: cannot infer the width of encoder {type(self.encoder).__name__} (no `config` or "
                "`embed_dim`); pass predictor_overrides={'encoder_dim': D}"
            )
        return values

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = official_param_groups({"encoder": self.encoder, "predictor": self.predictor})
        return torch.optim.AdamW(groups, lr=self.lr_schedule.value(1), betas=self.betas, eps=self.eps)

    # ------------------------------------------------------------------ resume (spec §10, exact with "replay")
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the data-stream position next to Lightning's model / optimizer / loop state."""
        checkpoint[STATE_KEY] = {
            "epoch_batches": self._epoch_batches,
            "total_batches": self._total_batches,
            "ema_updates": self.ema_updates,
            "mask_counters": [list(c) for c in mask_counters(self._mask_collator())],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Prepare the data-stream fast-forward (runs before the loader is built; see ``data_resume``)."""
        if self._device_mesh is not None and not self.strict_loading:  # FSDP2, see configure_model
            _check_checkpoint_keys(self, self._trainer.ckpt_path if self._trainer is not None else None)
        state = checkpoint.get(STATE_KEY)
        if state is None:
            return
        self._epoch_batches = int(state["epoch_batches"])
        self._total_batches = int(state["total_batches"])
        self.ema_updates = int(state.get("ema_updates", 0))
        if self.data_resume == "replay":
            self._replay_batches = self._epoch_batches
            return
        collator = self._mask_collator()
        if collator is not None:  # official: counters continue, the data stream restarts
            collator.fast_forward(self._total_batches)

    def on_train_start(self) -> None:
        if self._anneal_optimizer_state is not None and self.trainer.ckpt_path is None:
            _load_optimizer_state(self, self.trainer.optimizers[0], self._anneal_optimizer_state)
        self._anneal_optimizer_state = None
        if self._replay_batches:
            self._discard_batches(self._replay_batches)
            self._replay_batches = 0

    def on_train_epoch_start(self) -> None:
        self._epoch_batches = 0  # not called when Lightning resumes in the middle of an epoch

    def _mask_collator(self) -> Any:
        """The datamodule's ``collate_fn`` when it can fast-forward (a :class:`~jepa.data.masks.MaskCollator`)."""
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        collate = getattr(datamodule, "collate_fn", None)
        return collate if hasattr(collate, "fast_forward") else None

    def _discard_batches(self, count: int) -> None:
        """Pull ``count`` batches through the training data fetcher without training on them.

        Uses Lightning's fit-loop data fetcher (created before ``on_train_start``); its ``fetched`` count is put
        back so that Lightning's own resume bookkeeping (which adds the batches of the restored progress) holds.
        """
        fetcher = getattr(self.trainer.fit_loop, "_data_fetcher", None)
        if fetcher is None or not hasattr(fetcher, "fetched"):
            raise RuntimeError(
                "PretrainTask(data_resume='replay'): this Lightning version has no fit_loop._data_fetcher; "
                "use data_resume='official'"
            )
        fetched = fetcher.fetched
        for i in range(count):
            try:
                next(fetcher)
            except StopIteration:
                raise RuntimeError(
                    f"PretrainTask(data_resume='replay'): the loader ended after {i} of the {count} batches the "
                    "checkpoint had consumed in this epoch; was the data changed?"
                ) from None
        fetcher.fetched = fetched
        fetcher.done = False

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._epoch_batches += 1
        self._total_batches += 1
        # Schedules are per optimizer step; every micro-batch of an accumulated step writes the same values.
        step = self.trainer.global_step + 1
        lr, wd = self.lr_schedule.value(step), self.wd_schedule.value(step)
        for optimizer in self.trainer.optimizers:
            apply_schedules(optimizer, lr=lr, wd=wd)

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        """Optimizer step, then the EMA update (called by Lightning only at accumulation boundaries)."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        _fill_unused_optimizer_state(getattr(optimizer, "optimizer", optimizer))
        momentum = self.momentum_schedule.value(self.trainer.global_step + 1)  # global_step: steps before this one
        ema_update(*_ema_tensors(self.target_encoder, self.encoder), momentum)
        self.ema_updates += 1
        self.log("train/momentum", momentum, on_step=True, on_epoch=False)

    # ------------------------------------------------------------------ step
    @staticmethod
    def unpack_batch(batch: Sequence[Any]) -> list[Group]:
        """Collator output → ``[(clips (B, 3, T, H, W), [masks_enc], [masks_pred]), …]`` per fpc group."""
        if not isinstance(batch, (list, tuple)) or not batch:
            raise TypeError(
                "PretrainTask: a batch must be the MaskCollator output, a non-empty list of "
                f"(collated_group, [masks_enc], [masks_pred]); got {type(batch).__name__}"
            )
        groups: list[Group] = []
        for i, group in enumerate(batch):
            if not isinstance(group, (list, tuple)) or len(group) != 3:
                size = f" of length {len(group)}" if isinstance(group, (list, tuple)) else ""
                raise TypeError(
                    f"PretrainTask: batch[{i}] must be (collated_group, masks_enc, masks_pred), "
                    f"got {type(group).__name__}{size}"
                )
            data, masks_enc, masks_pred = group
            clips = data["clips"] if isinstance(data, Mapping) else data
            if isinstance(clips, (list, tuple)):
                clips = clips[0]  # one clip per sample (official num_clips = 1)
            if not isinstance(clips, torch.Tensor) or clips.ndim != 5:
                shape = tuple(clips.shape) if isinstance(clips, torch.Tensor) else type(clips).__name__
                raise ValueError(f"PretrainTask: batch[{i}] clips must be (B, 3, T, H, W), got {shape}")
            if len(masks_enc) != len(masks_pred) or not masks_enc:
                raise ValueError(
                    f"PretrainTask: batch[{i}] has {len(masks_enc)} context and {len(masks_pred)} target masks; "
                    "expected one pair per mask config"
                )
            groups.append((clips, list(masks_enc), list(masks_pred)))
        return groups

    def compute_loss(self, batch: Sequence[Any], rank: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The official loss of one batch.

        Args:
            batch: a :class:`~jepa.data.masks.MaskCollator` batch (one ``(clips, masks_enc, masks_pred)`` per group).
            rank: also compute ``target_erank`` (an eigen-decomposition of the target covariance; ``training_step``
                asks for it only on the steps Lightning logs).

        Returns:
            ``(loss, stats)``: the scalar loss averaged equally over (group, mask) pairs, and detached statistics
            (``loss_mask{j}``, ``context_tokens_mask{j}``, ``target_tokens_mask{j}``, ``target_std``,
            ``target_erank``).
        """
        groups = self.unpack_batch(batch)
        losses: list[torch.Tensor] = []
        per_mask: dict[int, list[torch.Tensor]] = {}
        stats: dict[str, torch.Tensor] = {}
        stds: list[torch.Tensor] = []
        ranks: list[torch.Tensor] = []
        penalties: list[torch.Tensor] = []
        for i, (clips, masks_enc, masks_pred) in enumerate(groups):
            with torch.no_grad():
                h = self.target_encoder(clips)  # (B, N, D)
                h = F.layer_norm(h, (h.size(-1),))  # no affine
                stds.append(h.float().flatten(0, 1).std(dim=0).mean())
                if rank:
                    ranks.append(effective_rank(h))  # dimensional collapse: → 1 while target_std can stay high
            for j, (m_enc, m_pred) in enumerate(zip(masks_enc, masks_pred, strict=True)):
                z = self.encoder(clips, masks=[m_enc])  # (B, Kc, D): one context pass per mask config
                if self.variance_weight or self.covariance_weight:  # not official: see variance_weight
                    penalties.append(torch.stack(variance_covariance_penalty(z)))  # (2,)
                p = self.predictor(z, m_enc, m_pred, mask_index=i)  # (B, Kt, D)
                target = apply_masks(h, [m_pred])  # (B, Kt, D)
                loss_ij = torch.mean(torch.abs(p - target) ** self.loss_exp) / self.loss_exp
                losses.append(loss_ij)
                per_mask.setdefault(j, []).append(loss_ij.detach())
                stats[f"context_tokens_mask{j}"] = torch.tensor(float(m_enc.shape[1]))
                stats[f"target_tokens_mask{j}"] = torch.tensor(float(m_pred.shape[1]))
        loss = torch.stack(losses).mean()
        if penalties:
            var_term, cov_term = torch.stack(penalties).mean(dim=0)  # averaged over (group, mask) like the loss
            stats["jepa_loss"] = loss.detach()
            stats["variance_penalty"], stats["covariance_penalty"] = var_term.detach(), cov_term.detach()
            loss = loss + self.variance_weight * var_term + self.covariance_weight * cov_term
        for j, values in per_mask.items():
            stats[f"loss_mask{j}"] = torch.stack(values).mean()
        stats["target_std"] = torch.stack(stds).mean()  # collapse indicator: → 0 when features collapse
        if ranks:
            stats["target_erank"] = torch.stack(ranks).mean()
        return loss, stats

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        trainer = self._trainer
        log_step = trainer is None or (trainer.global_step + 1) % max(1, trainer.log_every_n_steps) == 0
        loss, stats = self.compute_loss(batch, rank=log_step)  # Lightning writes on_step logs every n steps
        groups = self.unpack_batch(batch)
        batch_size = sum(int(clips.shape[0]) for clips, _, _ in groups)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        for key, value in stats.items():
            self.log(f"train/{key}", value, on_step=True, on_epoch=False, batch_size=batch_size)
        optimizer = self.trainer.optimizers[0] if self.trainer.optimizers else None
        if optimizer is not None:
            self.log("train/lr", float(optimizer.param_groups[0]["lr"]), on_step=True, on_epoch=False)
            self.log("train/wd", float(optimizer.param_groups[0]["weight_decay"]), on_step=True, on_epoch=False)
        patch, tubelet = self._patch(), self._tubelet()
        tokens = sum(
            int(c.shape[0]) * (c.shape[2] // tubelet) * (c.shape[3] // patch) * (c.shape[4] // patch)
            for c, _, _ in groups
        )  # clip tokens seen by the target encoder
        self.log_throughput("train/tokens_per_s", tokens, on_step=True, on_epoch=False)
        self.log_throughput("train/clips_per_s", batch_size, on_step=True, on_epoch=False)
        skipped = [g[0]["skipped"] for g in batch if isinstance(g[0], Mapping) and "skipped" in g[0]]
        if skipped:  # bad samples the data workers skipped since their previous samples (see jepa.data.datamodules)
            count = torch.stack([torch.as_tensor(s).sum() for s in skipped]).sum().float()
            self.log("data/skipped", count, reduce_fx="sum", sync_dist=True, on_step=False, on_epoch=True)
        return loss

    def _patch(self) -> int:
        cfg = getattr(self.encoder, "config", None)
        return int(getattr(cfg, "patch_size", 16))

    def _tubelet(self) -> int:
        cfg = getattr(self.encoder, "config", None)
        return int(getattr(cfg, "tubelet_size", 2))


def _fill_unused_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Give every parameter that never had a gradient a fresh AdamW state (step 0, zero moments).

    The predictor holds ``num_mask_tokens`` mask tokens and a recipe uses only as many as it has mask configs; AdamW
    creates state lazily, so the unused tokens have none. Lightning's sharded (FSDP2 ``save_distributed_checkpoint:
    true``) resume asks for the state of every parameter and fails on the missing ones. The filled state is exactly
    what AdamW would create at a parameter's first gradient, and AdamW skips parameters without gradients, so the
    training is unchanged; checkpoints then hold the state of every parameter.
    """
    template = next((state for state in optimizer.state.values() if state), None)
    if template is None:
        return
    for group in optimizer.param_groups:
        for param in group["params"]:
            if optimizer.state.get(param):
                continue
            optimizer.state[param] = {
                key: torch.zeros_like(value) if key == "step" else torch.zeros_like(param)
                for key, value in template.items()
            }


def _refuse_fsdp1(task: pl.LightningModule) -> None:
    """Raise under Lightning's ``FSDPStrategy`` (FSDP1); see :meth:`PretrainTask.configure_model`."""
    from lightning.pytorch.strategies import FSDPStrategy

    trainer = task._trainer
    if trainer is not None and isinstance(trainer.strategy, FSDPStrategy):
        raise TypeError(
            "PretrainTask does not support FSDPStrategy (FSDP1): its use_orig_params views are flat 1-D shards, "
            "which breaks the no-weight-decay rule for biases / 1-D parameters and the EMA pairing of the context "
            "and target encoders. Use FSDP2: trainer.strategy = lightning.pytorch.strategies.ModelParallelStrategy "
            "with data_parallel_size=<world size>, tensor_parallel_size=1 (see docs/pretraining.md)"
        )


def _ema_tensors(target: nn.Module, online: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The tensors the EMA updates: the parameters, or for FSDP2 (DTensor) parameters their local shards.

    A DTensor pair must have the same mesh and placements (then the local shards cover the same elements);
    otherwise, or when only one side is a DTensor, this raises naming the parameter.
    """
    t_named, o_named = list(target.named_parameters()), list(online.named_parameters())
    if len(t_named) != len(o_named):  # ema_update reports the mismatch
        return [p for _, p in t_named], [p for _, p in o_named]
    dtensor = _dtensor_type()
    t_out: list[torch.Tensor] = []
    o_out: list[torch.Tensor] = []
    for (name, t), (_, o) in zip(t_named, o_named, strict=True):
        t_sharded, o_sharded = (
            dtensor is not None and isinstance(t, dtensor),
            dtensor is not None and isinstance(o, dtensor),
        )
        if t_sharded != o_sharded:
            raise RuntimeError(
                f"PretrainTask EMA: target_encoder.{name} is {'' if t_sharded else 'not '}a DTensor but "
                f"encoder.{name} is {'' if o_sharded else 'not '}one; both encoders must be sharded the same way"
            )
        if t_sharded:
            if t.device_mesh != o.device_mesh or t.placements != o.placements:
                raise RuntimeError(
                    f"PretrainTask EMA: target_encoder.{name} is sharded as {t.placements} and encoder.{name} as "
                    f"{o.placements}; the EMA needs identical shards"
                )
            t, o = t.to_local(), o.to_local()  # no grad: the local shard storage itself
        t_out.append(t)
        o_out.append(o)
    return t_out, o_out


def _check_checkpoint_keys(task: nn.Module, path: Any) -> None:
    """Raise unless the Lightning checkpoint ``path`` holds every entry of ``task.state_dict()``.

    Under FSDP2 Lightning loads the model non-strictly (see :meth:`PretrainTask.configure_model`); this restores
    the missing-key check. Only the keys are read: a file is memory-mapped, a sharded directory
    (``save_distributed_checkpoint=True``) gives them from its ``.metadata`` index
    (:func:`jepa.checkpoints.checkpoint_state_keys`).
    """
    if path is None or not os.path.exists(path):
        return
    saved = checkpoint_state_keys(path)
    expected = list(task.state_dict())  # references only, no gather
    missing = [name for name in expected if name not in saved]
    if missing:
        raise KeyError(f"PretrainTask: checkpoint {path} has no weights for {missing[:8]} ({len(missing)} missing)")


def _dtensor_type() -> type | None:
    if not torch.distributed.is_available():
        return None
    from torch.distributed.tensor import DTensor

    return DTensor


def _load_optimizer_state(task: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a full, position-keyed optimizer state (``anneal_from``) into ``optimizer``.

    Plain parameters: ``optimizer.load_state_dict``. FSDP2 (DTensor) parameters: the positions are turned into
    parameter names and ``torch.distributed.checkpoint.state_dict.set_optimizer_state_dict`` shards the state.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    dtensor = _dtensor_type()
    if dtensor is None or not any(isinstance(p, dtensor) for p in params):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    # strict=False: parameters that never had a gradient (unused predictor mask tokens) have no state, as with
    # optimizer.load_state_dict
    names = {id(p): name for name, p in task.named_parameters()}
    fqns = [names[id(p)] for p in params]  # position k of the saved state = k-th parameter in group order
    saved_groups = state["param_groups"]
    if [len(g["params"]) for g in saved_groups] != [len(g["params"]) for g in optimizer.param_groups]:
        raise ValueError(
            "PretrainTask(anneal_from): the checkpoint's optimizer groups hold "
            f"{[len(g['params']) for g in saved_groups]} parameters, this task's "
            f"{[len(g['params']) for g in optimizer.param_groups]}"
        )
    position = {pid: k for k, pid in enumerate(pid for g in saved_groups for pid in g["params"])}
    by_name = {
        "state": {fqns[position[pid]]: value for pid, value in state["state"].items()},
        "param_groups": [{**g, "params": [fqns[position[pid]] for pid in g["params"]]} for g in saved_groups],
    }
    set_optimizer_state_dict(task, optimizer, by_name, options=StateDictOptions(full_state_dict=True, strict=False))


def mask_counters(collator: Any) -> list[list[int]]:
    """Shared counters of every mask generator of a :class:`~jepa.data.masks.MaskCollator` (``[]`` for ``None``)."""
    if collator is None:
        return []
    return [[g.counter for g in gens] for gens in collator.generators.values()]


def _strip(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def read_pretrain_checkpoint(path: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any] | None]:
    """Read encoder / predictor / target-encoder weights and the optimizer state of a pretraining checkpoint.

    Args:
        path: a Lightning ``.ckpt`` of :class:`PretrainTask` (``state_dict`` with ``encoder.``, ``predictor.``,
            ``target_encoder.`` prefixes, ``optimizer_states``), a sharded Lightning checkpoint directory
            (``ModelParallelStrategy(save_distributed_checkpoint=True)``, gathered in this process by
            :func:`jepa.checkpoints.load_lightning_checkpoint`) or an official ``.pt`` (keys ``encoder``,
            ``predictor``, ``target_encoder``, ``opt``; ``module.`` / ``backbone.`` prefixes removed).

    Returns:
        ``({"encoder": sd, "predictor": sd, "target_encoder": sd}, optimizer_state_or_None)``; the optimizer
        state's parameter ids are read by position in param-group order (see ``_load_optimizer_state``).
    """
    ckpt = load_lightning_checkpoint(path)
    names = ("encoder", "predictor", "target_encoder")
    if "state_dict" in ckpt:
        flat = ckpt["state_dict"]
        states = {n: {k[len(n) + 1 :]: v for k, v in flat.items() if k.startswith(n + ".")} for n in names}
        optimizer = (ckpt.get("optimizer_states") or [None])[0]
    elif all(n in ckpt for n in names):
        states = {n: _strip(ckpt[n]) for n in names}
        optimizer = ckpt.get("opt")
    else:
        raise KeyError(
            f"read_pretrain_checkpoint: {path} has keys {sorted(ckpt)[:8]}; expected a Lightning checkpoint "
            "('state_dict') or an official one ('encoder', 'predictor', 'target_encoder')"
        )
    empty = [n for n, sd in states.items() if not sd]
    if empty:
        raise KeyError(f"read_pretrain_checkpoint: {path} has no weights for {empty}")
    return states, optimizer
