"""Pure-torch V-JEPA 2 video encoders; importing this package registers the presets in ``jepa.registry.ENCODERS``."""

from jepa.encoders.config import EncoderConfig
from jepa.encoders.frame_encoder import FrameEncoder, jepa_frame_encoder, timm_frame_encoder
from jepa.encoders.init import init_vit_weights
from jepa.encoders.layers import MLP, Attention, Block
from jepa.encoders.masking import apply_masks, ids_to_thw
from jepa.encoders.patch_embed import PatchEmbed3D
from jepa.encoders.presets import (
    PRESETS,
    RELEASED,
    WIDTH_TO_HEADS,
    infer_encoder_config,
    preset_config,
    register_presets,
)
from jepa.encoders.rope import apply_rope_3d, rope_split, rotate
from jepa.encoders.vit import VideoViT, no_weight_decay_names

register_presets()

__all__ = [
    "MLP",
    "PRESETS",
    "RELEASED",
    "WIDTH_TO_HEADS",
    "Attention",
    "Block",
    "EncoderConfig",
    "FrameEncoder",
    "PatchEmbed3D",
    "VideoViT",
    "apply_masks",
    "apply_rope_3d",
    "ids_to_thw",
    "infer_encoder_config",
    "init_vit_weights",
    "jepa_frame_encoder",
    "no_weight_decay_names",
    "preset_config",
    "register_presets",
    "rope_split",
    "rotate",
    "timm_frame_encoder",
]
