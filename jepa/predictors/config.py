"""Architecture description of the V-JEPA 2 mask-denoising predictor."""

from __future__ import annotations

from dataclasses import dataclass

from jepa.encoders.config import RopeMode, TransformerConfigMixin


@dataclass
class PredictorConfig(TransformerConfigMixin):
    """Numbers that define the mask-denoising predictor (spec: encoder.md §10).

    Attributes:
        encoder_dim: width of the encoder it reads from and regresses (D_enc).
        embed_dim: predictor width (384 in every release).
        depth: number of blocks (12).
        num_heads: attention heads (12 → head_dim 32).
        mlp_ratio: MLP hidden is ``int(embed_dim * mlp_ratio)``.
        num_mask_tokens: learnable mask tokens (10 in released predictors).
        zero_init_mask_tokens: initialise mask tokens with zeros (every official config).
        patch_size / tubelet_size: tokeniser of the encoder; used to decode positions.
        img_size: construction crop; the RoPE grid is ``img_size // patch_size`` (official square-grid behaviour).
        num_frames: construction frames; official target tiling limit is ``(num_frames/tubelet)·G²``.
        qkv_bias / norm_eps / rope_mode / rope_theta: as for the encoder.
        use_activation_checkpointing: checkpoint every block during training.
        strict_target_range: official behaviour, target ids must be ``< (num_frames/tubelet)·G²`` (the mask-token
            tiling of the official code); ``False`` accepts any id like transformers (tiling to ``max id + 1``).
    """

    encoder_dim: int = 1024
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    num_mask_tokens: int = 10
    zero_init_mask_tokens: bool = True
    patch_size: int = 16
    tubelet_size: int = 2
    img_size: int = 256
    num_frames: int = 64
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    rope_mode: RopeMode = "official"
    rope_theta: float = 10000.0
    use_activation_checkpointing: bool = False
    strict_target_range: bool = True

    def __post_init__(self) -> None:
        self.check_transformer_fields()
        if self.num_mask_tokens < 1:
            raise ValueError(f"PredictorConfig: num_mask_tokens must be >= 1, got {self.num_mask_tokens}")

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Tokens of the construction clip, ``(num_frames/tubelet)·G²`` (official target tiling length)."""
        return (self.num_frames // self.tubelet_size) * self.grid_size**2
