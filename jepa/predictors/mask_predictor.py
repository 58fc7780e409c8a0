"""Mask-denoising predictor of V-JEPA 2 (official ``VisionTransformerPredictor``; spec: encoder.md §10)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from jepa.encoders.init import init_vit_weights
from jepa.encoders.layers import Block
from jepa.encoders.masking import as_mask_list, check_masks
from jepa.encoders.vit import no_weight_decay_names
from jepa.predictors.config import PredictorConfig

MaskArg = torch.Tensor | Sequence[torch.Tensor]


class MaskPredictor(nn.Module):
    """Predict encoder features of target tokens from context tokens; official state-dict keys.

    Args:
        config: architecture (:class:`~jepa.predictors.config.PredictorConfig`).

    Call ``predictor(x, masks_x, masks_y, mask_index=1, grid=None)``:

    * ``x``: context features ``(B, Nc, D_enc)`` (encoder output for the kept tokens).
    * ``masks_x``: context token ids ``(B, Nc)`` int64 (a tensor or a 1-element list).
    * ``masks_y``: target token ids ``(B, Nt)`` int64 (a tensor or a 1-element list).
    * ``mask_index``: which mask token (``mask_tokens[mask_index % num_mask_tokens]``).
    * ``grid``: ``(Hp, Wp)`` to decode ids; default is the official square construction grid ``(G, G)``,
      ``G = img_size // patch_size`` (pass the encoder grid for non-square inputs — corrected OPTION).
    * returns predictions ``(B, Nt, D_enc)`` in ``masks_y`` order.
    """

    def __init__(self, config: PredictorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else PredictorConfig()
        self.predictor_embed = nn.Linear(config.encoder_dim, config.embed_dim, bias=True)
        self.mask_tokens = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 1, config.embed_dim)) for _ in range(config.num_mask_tokens)
        )
        self.predictor_blocks = nn.ModuleList(
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
        self.predictor_norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.predictor_proj = nn.Linear(config.embed_dim, config.encoder_dim, bias=True)
        self.grad_checkpointing = config.use_activation_checkpointing
        init_vit_weights(self, self.predictor_blocks)
        if not config.zero_init_mask_tokens:
            with torch.no_grad():
                for token in self.mask_tokens:
                    nn.init.trunc_normal_(token, std=0.02)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint every block (non-reentrant) when training with gradients enabled."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Names of parameters excluded from weight decay (biases and 1-D tensors; mask tokens are 3-D)."""
        return no_weight_decay_names(self)

    @staticmethod
    def _single_mask(masks: MaskArg, name: str) -> torch.Tensor:
        mask_list = as_mask_list(masks, name)
        if mask_list is None or len(mask_list) != 1:
            count = 0 if mask_list is None else len(mask_list)
            raise ValueError(
                f"MaskPredictor: {name} must be one (B, K) tensor or a 1-element list, got {count} masks; "
                "call the predictor once per (context, target) mask pair"
            )
        return mask_list[0]

    def forward(
        self,
        x: torch.Tensor,
        masks_x: MaskArg,
        masks_y: MaskArg,
        mask_index: int = 1,
        grid: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Predict target features; see the class docstring. Returns ``(B, Nt, D_enc)``."""
        cfg = self.config
        ctx_ids = self._single_mask(masks_x, "masks_x")
        tgt_ids = self._single_mask(masks_y, "masks_y")
        if x.ndim != 3 or x.shape[-1] != cfg.encoder_dim:
            raise ValueError(
                f"MaskPredictor: x must be (B, Nc, D_enc={cfg.encoder_dim}) context features, got {tuple(x.shape)}"
            )
        batch, num_ctx, _ = x.shape
        if grid is None:
            grid = (cfg.grid_size, cfg.grid_size)
        # Official limit: mask tokens are tiled to num_patches before gathering with masks_y.
        id_limit = cfg.num_patches if cfg.strict_target_range else torch.iinfo(torch.int64).max
        check_masks([ctx_ids], batch=batch, num_tokens=torch.iinfo(torch.int64).max, name="masks_x")
        check_masks([tgt_ids], batch=batch, num_tokens=id_limit, name="masks_y")
        if ctx_ids.shape[1] != num_ctx:
            raise ValueError(
                f"MaskPredictor: masks_x keeps {ctx_ids.shape[1]} tokens but x has {num_ctx} context tokens"
            )
        ctx_ids, tgt_ids = ctx_ids.to(x.device), tgt_ids.to(x.device)
        num_tgt = tgt_ids.shape[1]

        ctx = self.predictor_embed(x)  # (B, Nc, E)
        token = self.mask_tokens[mask_index % cfg.num_mask_tokens]  # (1, 1, E)
        tgt = token.expand(batch, num_tgt, -1).to(ctx.dtype)  # (B, Nt, E): the same vector at every target
        tokens = torch.cat([ctx, tgt], dim=1)  # (B, Nc+Nt, E)
        ids = torch.cat([ctx_ids, tgt_ids], dim=1)  # (B, Nc+Nt)

        # Raster order for the blocks (official), undone afterwards.
        order = torch.argsort(ids, dim=1)  # (B, Nc+Nt)
        ids = torch.gather(ids, 1, order)
        tokens = torch.gather(tokens, 1, order.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        for block in self.predictor_blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, ids, grid, use_reentrant=False)
            else:
                tokens = block(tokens, ids, grid)
        tokens = self.predictor_norm(tokens)
        inverse = torch.argsort(order, dim=1)
        tokens = torch.gather(tokens, 1, inverse.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        return self.predictor_proj(tokens[:, num_ctx:])  # (B, Nt, D_enc)
