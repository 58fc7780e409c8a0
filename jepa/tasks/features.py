"""Feature extraction with a frozen encoder (``jepa predict``)."""

from __future__ import annotations

from typing import Any, Literal

import torch

from jepa.tasks.base import BaseTask, EncoderSpec, build_encoder

Pooling = Literal["mean", "none"]


class FeatureExtractionTask(BaseTask):
    """Encode clips with a frozen encoder and return their features.

    Batches are dicts with ``"video"`` ``(B, S, 3, T, H, W)`` (S = segments × views of each video, see
    :class:`jepa.data.inference.VideoFilesDataModule`) and ``"path"`` (list of B strings).
    ``predict_step`` returns ``{"path": [...], "features": tensor}`` with features

    - ``pooling="mean"``: tokens averaged over tokens and over the S clips → ``(B, D)`` (or ``(B, L·D)`` with
      ``out_layers``, the L layers concatenated along features);
    - ``pooling="none"``: all tokens ``(B, S, N, D)`` (``(B, S, L·N, D)`` with ``out_layers``, layers concatenated
      along tokens as the multilevel probes do).

    Args:
        encoder: registry name, checkpoint source, or module (see :func:`jepa.tasks.base.build_encoder`).
        pretrained: weights for a registry name: ``True`` (registered weights), a source, or ``False``.
        encoder_overrides: ``EncoderConfig`` fields for a registry name (e.g. ``{"img_size": 64}``).
        checkpoint_key: top-level key of official multi-model files.
        pooling: ``"mean"`` or ``"none"``.
        out_layers: 0-based block indices whose normalised outputs are returned instead of the last layer.
    """

    def __init__(
        self,
        encoder: EncoderSpec = "vit_large",
        pretrained: bool | str = False,
        encoder_overrides: dict[str, Any] | None = None,
        checkpoint_key: str | None = None,
        pooling: Pooling = "mean",
        out_layers: list[int] | None = None,
    ) -> None:
        if pooling not in ("mean", "none"):
            raise ValueError(f"FeatureExtractionTask: pooling must be 'mean' or 'none', got {pooling!r}")
        # A plain tuple: nn.Module refuses module attributes before __init__ (configure_models runs inside it).
        self._encoder_args = (encoder, pretrained, encoder_overrides, checkpoint_key)
        self.pooling = pooling
        self.out_layers = out_layers
        super().__init__()
        self.save_hyperparameters(ignore=["encoder"] if not isinstance(encoder, str) else None)

    def configure_models(self) -> None:
        self.register_frozen("encoder", build_encoder(*self._encoder_args))

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, S, 3, T, H, W)`` clips → features as described in the class docstring."""
        if video.ndim != 6:
            raise ValueError(
                f"FeatureExtractionTask: batch['video'] must be (B, S, 3, T, H, W), got shape {tuple(video.shape)}"
            )
        batch, clips = video.shape[:2]
        flat = video.flatten(0, 1)  # (B·S, 3, T, H, W)
        if self.out_layers:
            layers = self.encoder(flat, out_layers=self.out_layers)  # L × (B·S, N, D)
            tokens = torch.cat(layers, dim=1) if self.pooling == "none" else torch.cat(layers, dim=-1)
        else:
            tokens = self.encoder(flat)  # (B·S, N, D)
        tokens = tokens.unflatten(0, (batch, clips))  # (B, S, N', D')
        if self.pooling == "mean":
            return tokens.mean(dim=(1, 2))  # (B, D')
        return tokens

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any] | None:
        if len(batch["path"]) == 0:  # every video of the batch was unreadable (and reported by the dataset)
            return None
        return {"path": list(batch["path"]), "features": self.encode(batch["video"]).float().cpu()}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        raise RuntimeError(
            "FeatureExtractionTask has nothing to train: use `jepa predict` (the encoder is frozen). "
            "Training recipes are PretrainTask, ProbeTask and the other tasks of `jepa.tasks`."
        )

    def configure_optimizers(self) -> None:
        return None
