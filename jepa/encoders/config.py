"""Architecture description of a V-JEPA 2 video ViT encoder, as one serialisable dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

RopeMode = Literal["official", "interleaved"]


class TransformerConfigMixin:
    """Checks, derived sizes and dict round trip shared by the encoder and predictor configs.

    Subclasses are dataclasses with ``embed_dim``, ``num_heads``, ``mlp_ratio`` and ``rope_mode`` fields.
    """

    embed_dim: int
    num_heads: int
    mlp_ratio: float
    rope_mode: str

    def check_transformer_fields(self) -> None:
        """Raise ``ValueError`` naming the config class for an impossible width/heads/RoPE combination."""
        name = type(self).__name__
        if self.embed_dim % self.num_heads:
            raise ValueError(f"{name}: embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.rope_mode not in ("official", "interleaved"):
            raise ValueError(f"{name}: rope_mode must be 'official' or 'interleaved', got {self.rope_mode!r}")
        if self.head_dim < 6:
            raise ValueError(f"{name}: head_dim={self.head_dim} < 6 leaves no channels for 3-D RoPE")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """Build from a dict, rejecting unknown fields by name."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown}; known fields are {sorted(known)}")
        return cls(**values)


@dataclass
class EncoderConfig(TransformerConfigMixin):
    """Numbers that define a video ViT encoder (spec: encoder.md §1–§5).

    Attributes:
        embed_dim: token width D.
        depth: number of transformer blocks.
        num_heads: attention heads; ``embed_dim`` must be divisible by it.
        mlp_ratio: MLP hidden width is ``int(embed_dim * mlp_ratio)``.
        patch_size: spatial patch side (16 for every release).
        tubelet_size: frames per token (2 for every release).
        in_chans: input channels.
        img_size: construction crop; only used for the RoPE grid when ``handle_nonsquare_inputs`` is False.
        num_frames: construction frame count; informational (any multiple of ``tubelet_size`` works).
        qkv_bias: bias on the fused qkv projection.
        norm_eps: LayerNorm epsilon.
        rope_mode: ``"official"`` reproduces the tiled-frequency RoPE of the released weights (spec §5.3 QUIRK);
            ``"interleaved"`` is the corrected standard RoPE (only for training from scratch).
        rope_theta: RoPE base (10000).
        handle_nonsquare_inputs: decode RoPE positions with the actual input grid (official default True).
        use_activation_checkpointing: checkpoint every block (non-reentrant) during training.
    """

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    patch_size: int = 16
    tubelet_size: int = 2
    in_chans: int = 3
    img_size: int = 256
    num_frames: int = 16
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    rope_mode: RopeMode = "official"
    rope_theta: float = 10000.0
    handle_nonsquare_inputs: bool = True
    use_activation_checkpointing: bool = False

    def __post_init__(self) -> None:
        self.check_transformer_fields()
