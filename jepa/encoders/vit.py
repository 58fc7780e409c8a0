"""``VideoViT``: the V-JEPA 2 video encoder with 3-D RoPE and a timm-like API (spec: encoder.md §1–§9)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from jepa.encoders.config import EncoderConfig
from jepa.encoders.init import init_vit_weights
from jepa.encoders.layers import Block
from jepa.encoders.masking import apply_masks, as_mask_list, check_masks
from jepa.encoders.patch_embed import PatchEmbed3D

MaskArg = torch.Tensor | Sequence[torch.Tensor] | None


def no_weight_decay_names(module: nn.Module) -> set[str]:
    """Parameter names the official optimiser excludes from weight decay: biases and every 1-D tensor."""
    return {name for name, param in module.named_parameters() if "bias" in name or param.ndim == 1}


class VideoViT(nn.Module):
    """Video ViT encoder; the state dict uses the official key names.

    Args:
        config: architecture (:class:`~jepa.encoders.config.EncoderConfig`).

    Call ``encoder(video, masks=None, out_layers=None)``:

    * ``video``: ``(B, C, T, H, W)`` float, already normalised, ``T`` a multiple of ``tubelet_size`` and ``H, W``
      multiples of ``patch_size``; an image ``(B, C, H, W)`` is repeated to ``tubelet_size`` frames.
    * ``masks``: optional ``(B, K)`` int64 keep-index tensor or list of them; kept tokens of every mask are
      concatenated along the batch axis (official), giving ``(len(masks)·B, K, D)``.
    * returns ``norm(x_L)`` ``(B, N, D)``, or with ``out_layers=[i, …]`` the list of ``norm(x_i)`` (0-based blocks).
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else EncoderConfig()
        self.embed_dim = self.num_features = config.embed_dim
        self.patch_embed = PatchEmbed3D(config.in_chans, config.embed_dim, config.patch_size, config.tubelet_size)
        self.blocks = nn.ModuleList(
            Block(
                config.embed_dim,
                config.num_heads,
                config.mlp_hidden_dim,
                qkv_bias=config.qkv_bias,
                norm_eps=config.norm_eps,
                rope_mode=config.rope_mode,
                rope_theta=config.rope_theta,
            )
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.grad_checkpointing = config.use_activation_checkpointing
        init_vit_weights(self, self.blocks)

    # ------------------------------------------------------------------ helpers
    def patch_grid(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid ``(T', Hp, Wp)`` of a ``(T, H, W)`` input."""
        cfg = self.config
        return num_frames // cfg.tubelet_size, height // cfg.patch_size, width // cfg.patch_size

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint every block (non-reentrant) when training with gradients enabled."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Names of parameters excluded from weight decay (biases, LayerNorm weights)."""
        return no_weight_decay_names(self)

    def _check_video(self, video: torch.Tensor) -> torch.Tensor:
        """Validate the layout and sizes, turn an image into a clip; returns ``(B, C, T, H, W)``."""
        cfg = self.config
        if not isinstance(video, torch.Tensor):
            raise TypeError(f"VideoViT: expected a torch.Tensor video, got {type(video).__name__}")
        if not video.is_floating_point():
            raise TypeError(f"VideoViT: expected a float video (normalised pixels), got dtype {video.dtype}")
        if video.ndim == 4:
            if video.shape[1] != cfg.in_chans:
                hint = " (channels-last? use image.permute(0, 3, 1, 2))" if video.shape[-1] == cfg.in_chans else ""
                raise ValueError(
                    f"VideoViT: an image must be (B, C={cfg.in_chans}, H, W), got {tuple(video.shape)}{hint}"
                )
            video = video.unsqueeze(2).expand(-1, -1, cfg.tubelet_size, -1, -1)  # (B, C, tubelet, H, W)
        elif video.ndim != 5:
            raise ValueError(
                f"VideoViT: expected a video (B, C={cfg.in_chans}, T, H, W) or an image (B, C, H, W), "
                f"got {video.ndim}-D shape {tuple(video.shape)}"
            )
        if video.shape[1] != cfg.in_chans:
            if video.shape[2] == cfg.in_chans:
                hint = " — this looks like the transformers layout (B, T, C, H, W); use video.permute(0, 2, 1, 3, 4)"
            elif video.shape[-1] == cfg.in_chans:
                hint = " — this looks channels-last (B, T, H, W, C); use video.permute(0, 4, 1, 2, 3)"
            else:
                hint = ""
            raise ValueError(
                f"VideoViT: expected channels in dim 1, (B, C={cfg.in_chans}, T, H, W), got {tuple(video.shape)}{hint}"
            )
        num_frames, height, width = video.shape[2:]
        if num_frames % cfg.tubelet_size:
            raise ValueError(
                f"VideoViT: T={num_frames} frames is not a multiple of tubelet_size={cfg.tubelet_size} "
                f"(input shape {tuple(video.shape)})"
            )
        if height % cfg.patch_size or width % cfg.patch_size:
            raise ValueError(
                f"VideoViT: H={height} and W={width} must be multiples of patch_size={cfg.patch_size} "
                f"(input shape {tuple(video.shape)})"
            )
        return video

    def _run_block(self, block: nn.Module, x: torch.Tensor, ids: torch.Tensor | None, grid: tuple[int, int]):
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, ids, grid, use_reentrant=False)
        return block(x, ids, grid)

    # ------------------------------------------------------------------ forward
    def _tokens_and_blocks(
        self, video: torch.Tensor, masks: MaskArg, keep: set[int]
    ) -> tuple[torch.Tensor, list[torch.Tensor], tuple[int, int, int]]:
        """Patchify, mask, run all blocks; returns the last block output, outputs of blocks in ``keep`` and the grid."""
        video = self._check_video(video)
        t_tokens, hp, wp = self.patch_grid(*video.shape[2:])
        x = self.patch_embed(video)  # (B, N, D)
        mask_list = as_mask_list(masks)
        ids = None
        if mask_list is not None:
            check_masks(mask_list, batch=x.shape[0], num_tokens=x.shape[1])
            x = apply_masks(x, mask_list)  # (len(masks)·B, K, D)
            ids = torch.cat(mask_list, dim=0).to(x.device)  # (len(masks)·B, K)
        if self.config.handle_nonsquare_inputs:
            grid = (hp, wp)
        else:
            side = self.config.img_size // self.config.patch_size
            grid = (side, side)
        kept = []
        for i, block in enumerate(self.blocks):
            x = self._run_block(block, x, ids, grid)
            if i in keep:
                kept.append(x)
        return x, kept, (t_tokens, hp, wp)

    def _resolve_layers(self, layers: int | Sequence[int] | None) -> list[int]:
        depth = len(self.blocks)
        if layers is None:
            return [depth - 1]
        indices = list(range(depth - layers, depth)) if isinstance(layers, int) else [int(i) for i in layers]
        resolved = []
        for index in indices:
            if not -depth <= index < depth:
                raise ValueError(f"VideoViT: layer index {index} out of range for depth {depth}")
            resolved.append(index % depth)
        return resolved

    def forward(
        self, video: torch.Tensor, masks: MaskArg = None, out_layers: Sequence[int] | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """Encode a clip; see the class docstring. Returns ``(B, N, D)`` or a list of ``norm(x_i)``."""
        if out_layers is None:
            x, _, _ = self._tokens_and_blocks(video, masks, keep=set())
            return self.norm(x)  # (B, N, D)
        layers = self._resolve_layers(list(out_layers))
        _, kept, _ = self._tokens_and_blocks(video, masks, keep=set(layers))
        return [self.norm(x) for x in kept]  # increasing block order

    def forward_features(self, video: torch.Tensor, masks: MaskArg = None) -> torch.Tensor:
        """Final-norm patch tokens ``(B, N, D)`` (timm name)."""
        return self.forward(video, masks)

    def forward_intermediates(
        self,
        video: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = True,
        output_fmt: str = "NLC",
        intermediates_only: bool = False,
        masks: MaskArg = None,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Outputs of selected blocks (timm-like).

        Args:
            video: as in :meth:`forward`.
            indices: an int ``n`` (last ``n`` blocks), a list of 0-based (or negative) block indices, or ``None``
                (all blocks).
            norm: apply the final ``norm`` to each intermediate (official ``out_layers`` semantics).
            output_fmt: ``"NLC"`` tokens ``(B, N, D)`` or ``"NCTHW"`` feature maps ``(B, D, T', Hp, Wp)`` (no masks).
            intermediates_only: return only the list.
            masks: optional keep-index masks as in :meth:`forward`.

        Returns:
            ``intermediates`` or ``(final, intermediates)`` with ``final = norm(x_L)`` ``(B, N, D)``.
        """
        if output_fmt not in ("NLC", "NCTHW"):
            raise ValueError(f"VideoViT.forward_intermediates: output_fmt must be 'NLC' or 'NCTHW', got {output_fmt!r}")
        if output_fmt == "NCTHW" and masks is not None:
            raise ValueError("VideoViT.forward_intermediates: output_fmt='NCTHW' needs unmasked input")
        layers = list(range(len(self.blocks))) if indices is None else self._resolve_layers(indices)
        x, kept, (t_tokens, hp, wp) = self._tokens_and_blocks(video, masks, keep=set(layers))
        intermediates = [self.norm(y) if norm else y for y in kept]
        if output_fmt == "NCTHW":
            intermediates = [y.transpose(1, 2).unflatten(2, (t_tokens, hp, wp)) for y in intermediates]
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_pretrained(cls, source: str | Path, **kwargs: Any) -> VideoViT:
        """Load an encoder from a Hub repo id, URL, file or directory (via :func:`jepa.hub.load_pretrained`)."""
        from jepa.hub import load_pretrained

        encoder = load_pretrained(source, **kwargs).encoder
        if encoder is None:
            raise ValueError(f"VideoViT.from_pretrained: {source!r} holds no encoder weights")
        return encoder

    def save_pretrained(self, directory: str | Path) -> Any:
        """Write this encoder in the ``jepa`` layout (delegates to :func:`jepa.hub.save_pretrained`)."""
        from jepa.hub import save_pretrained

        return save_pretrained(directory, encoder=self)
