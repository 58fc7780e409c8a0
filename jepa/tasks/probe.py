"""Frozen-encoder evaluation with attentive probes: a hyper-parameter sweep of classifiers on one frozen encoder.

Spec: probes.md (§1 architecture, §2 sweep, §3 data settings, §4 multi-clip / multi-view, §5 multilevel, §7 loop).
Batches come from :class:`jepa.data.VideoClassificationDataModule` / ``ImageAsVideoDataModule`` (``clips``: list of
``(B, 3, T, H, W)``, segment-major over ``num_segments × num_views``; ``indices``: one entry per segment;
``label``) or, for ``jepa predict``, from :class:`jepa.data.inference.VideoFilesDataModule` (``video``
``(B, S, 3, T, H, W)``, ``path``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from jepa.probes.classifier import AttentiveClassifier
from jepa.probes.layouts import load_probe_state_dict
from jepa.probes.sweep import ProbeSweep
from jepa.tasks.base import EncoderSpec, build_encoder
from jepa.tasks.sweep import SweepProbeTask

log = logging.getLogger(__name__)

AccuracyMode = Literal["exact", "official"]

VIDEO_LRS = [5e-3, 3e-3, 1e-3, 3e-4, 1e-4]
VIDEO_WDS = [0.01, 0.1, 0.4, 0.8]


def read_class_map(path: str | os.PathLike[str]) -> list[str]:
    """Class names by label from a class-map file.

    Accepted: JSON ``{"name": label}`` (``jepa data synth``'s ``classes.json``), JSON ``{"label": "name"}``
    (transformers ``id2label``), a JSON list, or a text file with one name per line (line i = label i).
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, list):
            return [str(name) for name in data]
        if isinstance(data, dict):
            if all(isinstance(v, int) for v in data.values()):
                names = {int(v): str(k) for k, v in data.items()}
            else:
                names = {int(k): str(v) for k, v in data.items()}
            missing = sorted(set(range(len(names))) - set(names))
            if missing:
                raise ValueError(f"{path}: class map labels must be 0..{len(names) - 1}; missing {missing[:10]}")
            return [names[i] for i in range(len(names))]
        raise ValueError(f"{path}: expected a JSON object or list, got {type(data).__name__}")
    return [line.strip() for line in text.splitlines() if line.strip()]


class ProbeTask(SweepProbeTask):
    """Train (``fit``) or evaluate (``validate`` / ``test`` / ``predict``) attentive probes on a frozen encoder.

    Every batch is encoded once (no grad, eval mode, under the trainer's autocast); each segment × view clip is
    encoded independently, the segments of one view are concatenated along the token axis (multilevel features too),
    and every head of the sweep sees those tokens. Training: per-head cross-entropy summed (heads are independent).
    Evaluation: per head, the mean of per-view softmax probabilities; top-1 / top-5 per head; the best head by top-1
    is logged as ``val/best_top1`` / ``val/best_head`` and kept for ``predict`` and export.

    Args:
        num_classes: classes of the task.
        encoder: registry name, checkpoint source or module (:func:`jepa.tasks.base.build_encoder`).
        pretrained: weights for a registry name (``True``: its registered weights; or a source).
        encoder_overrides: ``EncoderConfig`` fields (``img_size``, ``num_frames`` …).
        checkpoint_key: top-level key of official multi-model files (probes use ``target_encoder``).
        out_layers: 0-based encoder blocks whose normalised outputs are concatenated along tokens (multilevel
            probes: ViT-L ``[17, 19, 21, 23]``, ViT-g ``[24, 29, 34, 39]``); ``None``: last layer.
        probe_num_heads, probe_depth, probe_norm_eps: pooler architecture (official 16, 4, 1e-5).
        probe_activation_checkpointing: checkpoint the pooler's self-attention blocks (official: on).
        probe_stacked: run the heads through :mod:`jepa.probes.batched` (key/value-free cross-attention over the
            shared tokens; same outputs, parameters and state-dict layout as the loop). Pays off mainly for
            ``probe_depth=1`` sweeps (see ``docs/benchmarks.md``).
        lrs, weight_decays: the sweep grid (LR-major product); empty lists for no grid heads.
        start_lr, final_lr, final_weight_decay, warmup_epochs: shared by the grid heads (``start_lr`` None = lr,
            ``final_weight_decay`` None = constant WD).
        heads: explicit heads placed before the grid heads, each a dict of :class:`HeadHParams` fields
            (``lr``, ``weight_decay``, ``start_lr``, ``final_lr``, ``final_weight_decay``, ``warmup_epochs``).
        betas, eps: AdamW (torch defaults, as official).
        fused_adamw: torch's fused AdamW kernel for the heads (``None``: torch's default, as official; ``True`` made
            the optimizer step of 20 heads ~5× faster on CPU, ``docs/benchmarks.md``; results equal up to rounding).
        accuracy: ``"exact"`` sample-weighted dataset accuracy, or ``"official"`` mean of per-batch accuracies.
        image_frames: repeat 4-D image batches ``(B, 3, H, W)`` to this many frames (image probes).
        probe_checkpoint: a released probe (official ``.pt`` with ``classifiers``, or transformers classification
            weights) loaded into the heads: official files are zipped with the heads (``classifiers[i]`` → head i,
            as the official evaluation does); ``probe_checkpoint_index`` loads that one classifier into head 0.
        class_map: class-name file for ``predict`` (see :func:`read_class_map`).
        predict_top_k: labels returned per sample by ``predict``.
        export_best_probe: path of an official-layout probe file written with the best head at the end of ``fit``.
        save_frozen: keep the encoder in Lightning checkpoints (off: it is rebuilt from its source).
    """

    task_name = "ProbeTask"
    best_score_buffer = "best_top1"
    best_score_label = "val top-1"

    def __init__(
        self,
        num_classes: int,
        encoder: EncoderSpec = "vjepa2_vitl_256",
        pretrained: bool | str = True,
        encoder_overrides: dict[str, Any] | None = None,
        checkpoint_key: str | None = None,
        out_layers: list[int] | None = None,
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
        accuracy: AccuracyMode = "exact",
        image_frames: int | None = None,
        probe_checkpoint: str | None = None,
        probe_checkpoint_index: int | None = None,
        class_map: str | None = None,
        predict_top_k: int = 5,
        export_best_probe: str | None = None,
        save_frozen: bool = False,
    ) -> None:
        if accuracy not in ("exact", "official"):
            raise ValueError(f"ProbeTask: accuracy must be 'exact' or 'official', got {accuracy!r}")
        self.num_classes = num_classes
        self._encoder_source = (encoder,)  # a tuple: an nn.Module cannot be assigned before Module.__init__
        self.pretrained = pretrained
        self.encoder_overrides = encoder_overrides
        self.checkpoint_key = checkpoint_key
        self.out_layers = list(out_layers) if out_layers else None
        self.init_sweep(
            VIDEO_LRS,
            VIDEO_WDS,
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
        self.accuracy_mode = accuracy
        self.image_frames = image_frames
        self.class_names = read_class_map(class_map) if class_map else None
        super().__init__(save_frozen=save_frozen)
        self.save_hyperparameters(ignore=["encoder"] if not isinstance(encoder, str) else None)
        if probe_checkpoint is not None:
            self.load_probe(probe_checkpoint, probe_checkpoint_index)

    # ------------------------------------------------------------------ construction
    def _build_encoder(self) -> nn.Module:
        return build_encoder(self._encoder_source[0], self.pretrained, self.encoder_overrides, self.checkpoint_key)

    def configure_models(self) -> None:
        encoder = self._build_encoder()
        self.register_frozen("encoder", encoder)
        embed_dim = getattr(encoder, "embed_dim", None)
        if embed_dim is None:
            raise ValueError(f"ProbeTask: the encoder ({type(encoder).__name__}) must expose `embed_dim`")
        self.sweep = ProbeSweep.build(
            lambda: AttentiveClassifier(embed_dim, self.num_classes, **self.probe_kwargs),
            self.head_hparams,
            stacked=self.probe_stacked,
        )
        self.register_best_head()  # best head by validation top-1: `best_head`, `best_top1`

    def configure_metrics(self) -> None:
        def accuracy(k: int) -> nn.Module:
            if self.accuracy_mode == "official":
                return MeanMetric()
            return MulticlassAccuracy(num_classes=self.num_classes, top_k=min(k, self.num_classes), average="micro")

        self.top1 = nn.ModuleList(accuracy(1) for _ in self.head_hparams)
        self.top5 = nn.ModuleList(accuracy(5) for _ in self.head_hparams)

    def load_probe(self, source: str, index: int | None = None) -> None:
        """Load released probe weights (official ``.pt`` or transformers classification weights) into the heads."""
        if index is not None:
            state, layout = load_probe_state_dict(source, index=index)
            self.sweep.heads[0].load_state_dict(state, strict=True)
            log.info("ProbeTask: loaded classifier %d of %s (%s layout) into head 0", index, source, layout)
            return
        state, layout = load_probe_state_dict(source, index=0)
        if layout == "official":  # every classifier, official: zip(classifiers, heads)
            count = self.load_official_heads(source)
        else:
            self.sweep.heads[0].load_state_dict(state, strict=True)
            count = 1
        log.info("ProbeTask: loaded %d classifier(s) from %s (%s layout)", count, source, layout)

    # ------------------------------------------------------------------ features
    def _to_video(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.ndim == 4:  # (B, 3, H, W) image → (B, 3, n, H, W), official image wrapper
            frames = self.image_frames or getattr(getattr(self.encoder, "config", None), "tubelet_size", 2)
            return clip.unsqueeze(2).expand(-1, -1, frames, -1, -1)
        return clip

    @torch.no_grad()
    def encode(self, clips: Sequence[torch.Tensor], num_segments: int) -> list[torch.Tensor]:
        """Frozen features of a batch, one token sequence per spatial view.

        Args:
            clips: ``num_segments · num_views`` tensors ``(B, 3, T, H, W)`` (or images ``(B, 3, H, W)``),
                segment-major.
            num_segments: temporal segments per video.

        Returns:
            ``num_views`` tensors ``(B, num_segments · L · N, D)`` (``L`` = number of ``out_layers``, else 1).
        """
        if len(clips) % num_segments:
            raise ValueError(f"ProbeTask: {len(clips)} clips are not a multiple of {num_segments} segments")
        num_views = len(clips) // num_segments
        batch = clips[0].shape[0]
        x = torch.cat([self._to_video(c) for c in clips], dim=0)  # (S·V·B, 3, T, H, W), segment-major
        self.encoder.eval()
        # Multilevel: the L normalised block outputs are concatenated along tokens.
        outputs = self.encoder(x, out_layers=self.out_layers) if self.out_layers else [self.encoder(x)]
        tokens = torch.cat(outputs, dim=1)  # (S·V·B, L·N, D)
        tokens = tokens.unflatten(0, (num_segments, num_views, batch))  # (S, V, B, N, D)
        # The pooler has no positions, so concatenating segments along tokens equals the official time concat.
        return [tokens[:, v].transpose(0, 1).flatten(1, 2) for v in range(num_views)]  # V × (B, S·N, D)

    @staticmethod
    def _clips_of(batch: dict[str, Any]) -> tuple[list[torch.Tensor], int]:
        if "clips" in batch:
            clips = list(batch["clips"])
            num_segments = len(batch["indices"]) if "indices" in batch else len(clips)
            return clips, num_segments
        if "video" in batch:  # (B, S, 3, T, H, W) from VideoFilesDataModule: S = segments × views
            video = batch["video"]
            return list(video.unbind(1)), video.shape[1]
        raise KeyError(f"ProbeTask: a batch needs 'clips' (+ 'indices') or 'video'; got keys {sorted(batch)}")

    def _segments_for_video_batch(self, num_clips: int) -> int:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        sampling = getattr(datamodule, "sampling", None)
        segments = getattr(sampling, "num_clips", None)
        return segments if segments and num_clips % segments == 0 else num_clips

    # ------------------------------------------------------------------ training
    def head_logits(self, views: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """``[head][view]`` logits ``(B, C)``."""
        per_view = [self.sweep(tokens) for tokens in views]  # V × H × (B, C)
        return [list(outs) for outs in zip(*per_view, strict=True)]  # H × V × (B, C)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        clips, num_segments = self._clips_of(batch)
        views = self.encode(clips, num_segments)
        labels = batch["label"]
        losses = torch.stack(
            [torch.stack([F.cross_entropy(o.float(), labels) for o in outs]).mean() for outs in self.head_logits(views)]
        )  # (heads,)
        bsz = labels.shape[0]
        self.log("train/loss", losses.mean(), prog_bar=True, batch_size=bsz)
        self.log("train/best_loss", losses.min(), batch_size=bsz)
        self.log("train/lr_head0", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=bsz)
        if "skipped" in batch:
            self.log("data/skipped", batch["skipped"].float(), reduce_fx="sum", sync_dist=True, batch_size=bsz)
        self.log_throughput("train/clips_per_s", bsz * len(clips))
        return losses.sum()  # heads are disjoint: the gradient of each head is that of its own loss

    # ------------------------------------------------------------------ evaluation
    def head_probabilities(self, batch: dict[str, Any]) -> torch.Tensor:
        """``(heads, B, C)`` class probabilities: per head, the mean over views of the softmax."""
        clips, num_segments = self._clips_of(batch)
        if "clips" not in batch:
            num_segments = self._segments_for_video_batch(len(clips))
        views = self.encode(clips, num_segments)
        return torch.stack(
            [torch.stack([F.softmax(o.float(), dim=-1) for o in outs]).mean(0) for outs in self.head_logits(views)]
        )

    def _update_metrics(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        for index, head_probs in enumerate(probs):
            if self.accuracy_mode == "official":  # per-batch accuracy, each batch weighted equally
                top5 = head_probs.topk(min(5, self.num_classes), dim=-1).indices
                self.top1[index].update((top5[:, 0] == labels).float().mean())
                self.top5[index].update((top5 == labels[:, None]).any(-1).float().mean())
            else:
                self.top1[index].update(head_probs, labels)
                self.top5[index].update(head_probs, labels)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._update_metrics(self.head_probabilities(batch), batch["label"])

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._update_metrics(self.head_probabilities(batch), batch["label"])

    def _log_epoch(self, stage: str) -> None:
        top1 = torch.stack([m.compute().float() for m in self.top1]) * 100.0  # (heads,)
        top5 = torch.stack([m.compute().float() for m in self.top5]) * 100.0
        for metric in (*self.top1, *self.top5):
            metric.reset()
        best = int(torch.nan_to_num(top1, nan=-1.0).argmax())
        for index in range(len(top1)):
            self.log(f"{stage}/top1/head_{index}", top1[index])
        self.log(f"{stage}/best_top1", top1[best], prog_bar=True)
        self.log(f"{stage}/best_top5", top5[best])
        self.log(f"{stage}/best_head", float(best))
        if stage == "val" and not (self._trainer is not None and self.trainer.sanity_checking):
            self.keep_best_head(best, float(top1[best]))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # ------------------------------------------------------------------ predict / export
    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any] | None:
        """Top-k classes of the best head: ``{"path", "top_labels", "top_classes", "top_scores"}`` (+ ``label``)."""
        if "path" in batch and len(batch["path"]) == 0:
            return None
        probs = self.head_probabilities(batch)[int(self.best_head)]  # (B, C)
        scores, classes = probs.topk(min(self.predict_top_k, self.num_classes), dim=-1)  # (B, k)
        names = self.class_names
        output: dict[str, Any] = {
            "top_classes": classes.cpu().tolist(),
            "top_scores": scores.cpu().tolist(),
            "top_labels": [[names[c] if names else str(c) for c in row] for row in classes.cpu().tolist()],
        }
        if "path" in batch:
            output["path"] = list(batch["path"])
        if "label" in batch:
            output["label"] = batch["label"].cpu().tolist()
        return output
