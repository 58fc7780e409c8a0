"""Action anticipation (EK100) with a frozen encoder, a frozen predictor and a sweep of 3-query attentive probes.

Spec: anticipation.md (§4 encoder + predictor future tokens, §5 probe, §6 focal loss and bf16, §7 metric).
Batches come from :class:`jepa.data.ek100.EK100DataModule` (``video`` ``(B, 3, T, H, W)``, ``verb`` / ``noun`` /
``action`` ``(B,)``, ``anticipation_time`` ``(B,)`` seconds) or, for ``jepa predict``, from
:class:`jepa.data.ek100.AnticipationVideosDataModule` (``video``, ``anticipation_time``, ``path``, ``time``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from jepa.data.ek100 import ClassMapping
from jepa.losses import sigmoid_focal_loss
from jepa.metrics.recall import MeanClassRecall
from jepa.probes.anticipation import HEAD_NAMES, AnticipationProbe, infer_anticipation_probe_config
from jepa.probes.batched import stacked_pooler_forward
from jepa.probes.layouts import load_probe_state_dict
from jepa.probes.sweep import ProbeSweep
from jepa.tasks.base import EncoderSpec, build_encoder
from jepa.tasks.sweep import SweepProbeTask

log = logging.getLogger(__name__)

Features = Literal["both", "encoder", "predictor"]

EK100_LRS = [5e-3, 3e-3, 1e-3, 3e-4, 1e-4]
EK100_WDS = [1e-4, 1e-3, 1e-2, 1e-1]


def mapping_path_for(probe_path: str | os.PathLike[str]) -> Path:
    """The class-mapping file written beside a probe: ``probe.pt`` → ``probe.classes.json``."""
    probe_path = Path(probe_path)
    return probe_path.with_name(probe_path.stem + ".classes.json")


class AnticipationTask(SweepProbeTask):
    """Train (``fit``) or evaluate (``validate`` / ``predict``) EK100-style anticipation probes.

    Each batch is encoded once (no grad, eval mode, under the trainer's autocast — ``bf16-mixed`` in the recipes);
    the frozen predictor then fills in the tokens of ONE future temporal slot, the slot ``T' + int(at · fps / tubelet)``
    for a sample with anticipation time ``at`` (``T'`` = encoder slots, e.g. 16 + 4 = 20 at 1 s), from all encoder
    tokens and the mask token ``mask_index``. The probes see the encoder tokens, the predicted tokens, or both
    concatenated along tokens (``features``). Training loss per head: sigmoid focal loss (α 0.25, γ 2, summed) of
    verb + noun + action. Validation: mean-class recall@5 per head; the maxima over heads are taken independently
    for verb, noun and action (official); the best head by action recall is kept for ``predict`` and export.

    Args:
        encoder: registry name, checkpoint source or module (:func:`jepa.tasks.base.build_encoder`).
        pretrained: weights for a registry name (``True``: its registered weights; or a source).
        encoder_overrides: ``EncoderConfig`` fields (``img_size``, ``num_frames`` …).
        checkpoint_key: top-level key of official files (``target_encoder`` by default).
        predictor: ``"auto"`` (the predictor stored with the encoder weights; random when the encoder is random),
            a predictor registry name (random init), a checkpoint source, a module, or ``None`` (encoder only).
        predictor_overrides: ``PredictorConfig`` fields for a randomly built predictor (``encoder_dim``,
            ``img_size``, ``patch_size`` and ``tubelet_size`` default to the encoder's; ``num_frames`` 64).
        features: ``"both"`` (official), ``"encoder"`` or ``"predictor"`` tokens fed to the probes.
        mask_index: predictor mask token used for the future slot (official default 1).
        frames_per_second: clip sampling rate (8) used to turn seconds into slots.
        num_output_frames: predicted frames (2 → one slot of ``tubelet_size`` 2).
        num_verbs, num_nouns, num_actions: head sizes; otherwise read from ``class_mapping``, from
            ``probe_checkpoint``, or from the data module's mapping at ``setup``.
        class_mapping: a mapping JSON (:class:`jepa.data.ek100.ClassMapping`), for head sizes and class names.
        probe_num_heads, probe_depth, probe_norm_eps, probe_activation_checkpointing: pooler architecture.
        probe_stacked: run the heads' poolers through :func:`jepa.probes.batched.stacked_pooler_forward`
            (key/value-free cross-attention over the shared tokens; same outputs and state dicts as the loop).
        lrs, weight_decays, start_lr, final_lr, final_weight_decay, warmup_epochs, heads: the sweep (EK100 grid
            5 LR × 4 WD by default; see :class:`jepa.tasks.probe.ProbeTask`).
        betas, eps: AdamW.
        fused_adamw: torch's fused AdamW kernel for the heads (``None``: torch's default; see ``ProbeTask``).
        focal_alpha, focal_gamma: focal loss.
        probe_checkpoint: a released / exported EK100 probe (official ``classifiers`` list) loaded into the heads
            (``classifiers[i]`` → head ``i``; ``probe_checkpoint_index`` loads that one into head 0).
        predict_top_k: actions returned per query by ``predict``.
        export_best_probe: official-layout probe file written with the best head at the end of ``fit`` (and the
            class mapping beside it, ``<stem>.classes.json``).
        save_frozen: keep encoder and predictor in Lightning checkpoints.
    """

    task_name = "AnticipationTask"
    best_score_buffer = "best_action_recall"
    best_score_label = "val action R@5"

    def __init__(
        self,
        encoder: EncoderSpec = "vjepa2_vitl_256",
        pretrained: bool | str = True,
        encoder_overrides: dict[str, Any] | None = None,
        checkpoint_key: str | None = None,
        predictor: str | nn.Module | None = "auto",
        predictor_overrides: dict[str, Any] | None = None,
        features: Features = "both",
        mask_index: int = 1,
        frames_per_second: int = 8,
        num_output_frames: int = 2,
        num_verbs: int | None = None,
        num_nouns: int | None = None,
        num_actions: int | None = None,
        class_mapping: str | None = None,
        probe_num_heads: int = 16,
        probe_depth: int = 4,
        probe_norm_eps: float = 1e-5,
        probe_activation_checkpointing: bool = True,
        probe_stacked: bool = False,
        lrs: list[float] | None = None,
        weight_decays: list[float] | None = None,
        start_lr: float | None = None,
        final_lr: float = 0.0,
        final_weight_decay: float | None = None,
        warmup_epochs: float = 0.0,
        heads: list[dict[str, float]] | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fused_adamw: bool | None = None,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        probe_checkpoint: str | None = None,
        probe_checkpoint_index: int | None = None,
        predict_top_k: int = 5,
        export_best_probe: str | None = None,
        save_frozen: bool = False,
    ) -> None:
        if features not in ("both", "encoder", "predictor"):
            raise ValueError(f"AnticipationTask: features must be 'both', 'encoder' or 'predictor', got {features!r}")
        if features != "encoder" and predictor is None:
            raise ValueError(f"AnticipationTask: features={features!r} needs a predictor (got predictor=None)")
        self._sources = (encoder, predictor)  # a tuple: modules cannot be assigned before Module.__init__
        self.pretrained = pretrained
        self.encoder_overrides = encoder_overrides
        self.checkpoint_key = checkpoint_key
        self.predictor_overrides = dict(predictor_overrides or {})
        self.features_mode = features
        self.mask_index = mask_index
        self.frames_per_second = frames_per_second
        self.num_output_frames = num_output_frames
        self.init_sweep(
            EK100_LRS,
            EK100_WDS,
            probe_num_heads=probe_num_heads,
            probe_depth=probe_depth,
            probe_norm_eps=probe_norm_eps,
            probe_activation_checkpointing=probe_activation_checkpointing,
            probe_stacked=probe_stacked,
            lrs=lrs,
            weight_decays=weight_decays,
            start_lr=start_lr,
            final_lr=final_lr,
            final_weight_decay=final_weight_decay,
            warmup_epochs=warmup_epochs,
            heads=heads,
            betas=betas,
            eps=eps,
            fused_adamw=fused_adamw,
            predict_top_k=predict_top_k,
            export_best_probe=export_best_probe,
        )
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.class_mapping = ClassMapping.load(class_mapping) if class_mapping else None
        super().__init__(save_frozen=save_frozen)
        ignore = [
            name for name, value in (("encoder", encoder), ("predictor", predictor)) if isinstance(value, nn.Module)
        ]
        self.save_hyperparameters(ignore=ignore or None)
        sizes = (num_verbs, num_nouns, num_actions)
        if all(s is not None for s in sizes):
            self.build_heads(*sizes)  # type: ignore[arg-type]
        elif self.class_mapping is not None:
            m = self.class_mapping
            self.build_heads(m.num_verbs, m.num_nouns, m.num_actions)
        elif probe_checkpoint is not None:
            state, _ = load_probe_state_dict(probe_checkpoint, index=probe_checkpoint_index or 0)
            config = infer_anticipation_probe_config(state)
            self.build_heads(config.num_verbs, config.num_nouns, config.num_actions)
        if probe_checkpoint is not None:
            self.load_probe(probe_checkpoint, probe_checkpoint_index)

    # ------------------------------------------------------------------ construction
    def _weights_source(self) -> str | None:
        """Checkpoint the encoder weights come from (the predictor of ``"auto"`` is read from the same file)."""
        from jepa.registry import ENCODERS

        encoder = self._sources[0]
        if isinstance(encoder, nn.Module):
            return None
        if encoder not in ENCODERS:
            return encoder
        if self.pretrained is True:
            return ENCODERS.get(encoder).weights
        return self.pretrained or None

    def _build_predictor(self, encoder: nn.Module) -> nn.Module | None:
        from jepa.predictors import MaskPredictor
        from jepa.predictors.config import PredictorConfig
        from jepa.registry import PREDICTORS

        spec = self._sources[1]
        if spec is None or self.features_mode == "encoder":
            return None
        if isinstance(spec, nn.Module):
            return spec
        enc_config = getattr(encoder, "config", None)
        defaults = {"encoder_dim": encoder.embed_dim, "num_frames": 64}
        if enc_config is not None:
            defaults.update(
                img_size=enc_config.img_size, patch_size=enc_config.patch_size, tubelet_size=enc_config.tubelet_size
            )
        if spec == "auto":
            source = self._weights_source()
            if source is None:  # random encoder: a random predictor of the official shape
                return MaskPredictor(PredictorConfig(**{**defaults, **self.predictor_overrides}))
            spec = source
        elif spec in PREDICTORS:
            return PREDICTORS.build(spec, **{**defaults, **self.predictor_overrides})
        import jepa

        predictor = jepa.load_pretrained(spec, checkpoint_key=self.checkpoint_key).predictor
        if predictor is None:
            raise ValueError(
                f"AnticipationTask: {spec!r} holds no mask predictor (needed for features={self.features_mode!r})"
            )
        return predictor

    def configure_models(self) -> None:
        encoder = build_encoder(self._sources[0], self.pretrained, self.encoder_overrides, self.checkpoint_key)
        if getattr(encoder, "embed_dim", None) is None:
            raise ValueError(f"AnticipationTask: the encoder ({type(encoder).__name__}) must expose `embed_dim`")
        self.register_frozen("encoder", encoder)
        predictor = self._build_predictor(encoder)
        if predictor is not None:
            self.register_frozen("predictor", predictor)
        else:
            self.predictor = None
        self.sweep: ProbeSweep | None = None  # built by build_heads once the class counts are known
        self.register_best_head()  # best head by validation action recall: `best_head`, `best_action_recall`

    def build_heads(self, num_verbs: int, num_nouns: int, num_actions: int) -> None:
        """Create the sweep of probes and their metrics (done once the class counts are known)."""
        if self.sweep is not None:
            existing = self.sweep.heads[0].config
            if (existing.num_verbs, existing.num_nouns, existing.num_actions) != (num_verbs, num_nouns, num_actions):
                raise ValueError(
                    f"AnticipationTask: heads have (verbs, nouns, actions) = "
                    f"{(existing.num_verbs, existing.num_nouns, existing.num_actions)} but the data has "
                    f"{(num_verbs, num_nouns, num_actions)}; use the class mapping the probe was trained with"
                )
            return
        dim = self.encoder.embed_dim
        self.sweep = ProbeSweep.build(
            lambda: AnticipationProbe(dim, num_verbs, num_nouns, num_actions, **self.probe_kwargs), self.head_hparams
        )
        counts = {"verb": num_verbs, "noun": num_nouns, "action": num_actions}
        self.recall = nn.ModuleList(
            nn.ModuleDict({name: MeanClassRecall(counts[name], k=5) for name in HEAD_NAMES}) for _ in self.head_hparams
        )
        if self._trainer is not None:  # built lazily in setup(): follow the module's device
            self.sweep.to(self.device)
            self.recall.to(self.device)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        mapping = getattr(datamodule, "class_mapping", None) if stage != "predict" else None
        if isinstance(mapping, ClassMapping):
            self.build_heads(mapping.num_verbs, mapping.num_nouns, mapping.num_actions)
            self.class_mapping = self.class_mapping or mapping
        if self.sweep is None:
            raise ValueError(
                "AnticipationTask: unknown head sizes; give `class_mapping`, `num_verbs/num_nouns/num_actions`, "
                "`probe_checkpoint`, or a data module with a `class_mapping` (EK100DataModule)"
            )

    def load_probe(self, source: str, index: int | None = None) -> None:
        """Load an official EK100 probe file (``classifiers`` list, ``module.`` keys) into the heads."""
        if self.sweep is None:
            raise RuntimeError("AnticipationTask.load_probe: build the heads first")
        count = self.load_official_heads(source, index)
        log.info("AnticipationTask: loaded %d classifier(s) from %s", count, source)

    # ------------------------------------------------------------------ features
    def future_target_ids(self, anticipation_time: torch.Tensor, num_tokens: int, per_slot: int) -> torch.Tensor:
        """Token ids of the predicted slot(s): ``N + per_slot · steps + arange(per_slot · slots)``, ``(B, Nt)``.

        ``steps = int(at · frames_per_second / tubelet)`` per sample (official), ``slots = num_output_frames //
        tubelet``.
        """
        tubelet = self.encoder.config.tubelet_size
        steps = torch.floor(anticipation_time.double() * self.frames_per_second / tubelet).long()  # (B,)
        slots = max(1, self.num_output_frames // tubelet)
        offsets = torch.arange(per_slot * slots, device=steps.device)  # (Nt,)
        return num_tokens + per_slot * steps[:, None] + offsets[None]  # (B, Nt)

    @torch.no_grad()
    def features(self, video: torch.Tensor, anticipation_time: torch.Tensor) -> torch.Tensor:
        """Frozen tokens for the probes: ``(B, N, D)``, ``(B, Nt, D)`` or both concatenated ``(B, N + Nt, D)``."""
        self.encoder.eval()
        x = self.encoder(video)  # (B, N, D)
        if self.features_mode == "encoder":
            return x
        batch, num_tokens, _ = x.shape
        patch = self.encoder.config.patch_size
        grid = (video.shape[-2] // patch, video.shape[-1] // patch)
        per_slot = grid[0] * grid[1]
        ctx_ids = torch.arange(num_tokens, device=x.device).expand(batch, num_tokens)  # (B, N)
        tgt_ids = self.future_target_ids(anticipation_time.to(x.device), num_tokens, per_slot)  # (B, Nt)
        self.predictor.eval()
        pred = self.predictor(x, ctx_ids, tgt_ids, mask_index=self.mask_index, grid=grid)  # (B, Nt, D)
        if self.features_mode == "predictor":
            return pred
        return torch.cat([x, pred.to(x.dtype)], dim=1)  # (B, N + Nt, D)

    # ------------------------------------------------------------------ training
    def head_loss(self, logits: dict[str, torch.Tensor], batch: dict[str, Any]) -> torch.Tensor:
        """Focal loss (summed) of verb + noun + action for one head."""
        return sum(
            sigmoid_focal_loss(logits[name], batch[name], self.focal_alpha, self.focal_gamma, "sum")
            for name in HEAD_NAMES
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if batch["video"].numel() == 0:  # every segment of the batch failed to decode
            return None
        tokens = self.features(batch["video"], batch["anticipation_time"])
        losses = torch.stack([self.head_loss(out, batch) for out in self.heads_forward(tokens)])  # (heads,)
        bsz = batch["video"].shape[0]
        self.log("train/loss", losses.mean(), prog_bar=True, batch_size=bsz)
        self.log("train/best_loss", losses.min(), batch_size=bsz)
        self.log("data/skipped", batch["skipped"].float(), reduce_fx="sum", sync_dist=True, batch_size=bsz)
        self.log_throughput("train/clips_per_s", bsz)
        return losses.sum()  # heads are disjoint: each head's gradient is that of its own loss

    # ------------------------------------------------------------------ evaluation
    def head_logits(self, batch: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
        """Per head ``{"verb", "noun", "action"}`` logits ``(B, C_*)``."""
        return self.heads_forward(self.features(batch["video"], batch["anticipation_time"]))

    def heads_forward(self, tokens: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Tokens ``(B, N, D)`` → per head ``{"verb", "noun", "action"}`` logits (head-batched if ``probe_stacked``)."""
        assert self.sweep is not None
        heads = list(self.sweep.heads)
        if not self.probe_stacked:
            return [head(tokens) for head in heads]
        pooled = stacked_pooler_forward([head.pooler for head in heads], tokens)  # (H, B, 3, D)
        return [head.classify(q) for head, q in zip(heads, pooled, strict=True)]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if batch["video"].numel() == 0:
            return
        for metrics, logits in zip(self.recall, self.head_logits(batch), strict=True):
            for name in HEAD_NAMES:
                metrics[name].update(logits[name].float(), batch[name])

    def on_validation_epoch_end(self) -> None:
        results = {name: [] for name in HEAD_NAMES}
        accuracy = {name: [] for name in HEAD_NAMES}
        for metrics in self.recall:
            for name in HEAD_NAMES:
                value = metrics[name].compute()
                results[name].append(value["recall"])
                accuracy[name].append(value["accuracy"])
                metrics[name].reset()
        recall = {name: torch.nan_to_num(torch.stack(v), nan=-1.0) for name, v in results.items()}  # (heads,)
        for index in range(len(self.sweep)):
            self.log(f"val/action_recall5/head_{index}", recall["action"][index])
        for name in HEAD_NAMES:  # official: the maxima are taken independently
            self.log(f"val/{name}_recall5", recall[name].max(), prog_bar=name == "action")
        best = int(recall["action"].argmax())
        for name in HEAD_NAMES:
            self.log(f"val/best_head_{name}_top5_acc", torch.nan_to_num(accuracy[name][best], nan=-1.0))
        self.log("val/best_head", float(best))
        if not self.trainer.sanity_checking:
            self.keep_best_head(best, float(recall["action"][best]))

    # ------------------------------------------------------------------ predict / export
    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any] | None:
        """Top-k anticipated actions of the best head per query.

        Returns ``{"path", "time", "top_actions" ("verb noun" names), "top_action_ids", "top_action_scores",
        "top_verbs", "top_nouns"}`` (lists, one row per query; scores are sigmoid probabilities).
        """
        if batch["video"].numel() == 0:
            return None
        logits = self.head_logits(batch)[int(self.best_head)]
        scores = {name: torch.sigmoid(logits[name].float()) for name in HEAD_NAMES}
        k = self.predict_top_k
        top_scores, top_ids = scores["action"].topk(min(k, scores["action"].shape[-1]), dim=-1)  # (B, k)
        top_verbs = scores["verb"].topk(min(k, scores["verb"].shape[-1]), dim=-1).indices
        top_nouns = scores["noun"].topk(min(k, scores["noun"].shape[-1]), dim=-1).indices
        mapping = self.class_mapping
        if mapping is not None:
            pairs = mapping.action_pairs()
            verb_raw = {new: raw for raw, new in mapping.verbs.items()}
            noun_raw = {new: raw for raw, new in mapping.nouns.items()}

            def action_name(i: int) -> str:
                verb, noun = pairs[i]
                return f"{mapping.verb_name(verb)} {mapping.noun_name(noun)}"

            def verb_name(i: int) -> str:
                return mapping.verb_name(verb_raw[i])

            def noun_name(i: int) -> str:
                return mapping.noun_name(noun_raw[i])
        else:
            action_name = verb_name = noun_name = str  # type: ignore[assignment]
        output: dict[str, Any] = {
            "top_actions": [[action_name(i) for i in row] for row in top_ids.cpu().tolist()],
            "top_action_ids": top_ids.cpu().tolist(),
            "top_action_scores": top_scores.cpu().tolist(),
            "top_verbs": [[verb_name(i) for i in row] for row in top_verbs.cpu().tolist()],
            "top_nouns": [[noun_name(i) for i in row] for row in top_nouns.cpu().tolist()],
        }
        for key in ("path", "time"):
            if key in batch:
                output[key] = list(batch[key])
        return output

    def export_probe(self, path: str | os.PathLike[str], all_heads: bool = False) -> Path:
        """Write the best head (or all heads, best first) as an official probe file, and the class mapping beside it
        (``<stem>.classes.json``) when known."""
        out = super().export_probe(path, all_heads)
        if self.class_mapping is not None:
            self.class_mapping.save(mapping_path_for(out))
        return out
