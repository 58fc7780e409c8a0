"""Checkpoints: official ``.pt`` / transformers / jepa layouts, sources (Hub, URL, file, directory), conversion.

Main entry points: :func:`load_pretrained`, :func:`save_pretrained`, :func:`convert`, :func:`download`.
``huggingface_hub``, ``safetensors`` and ``tqdm`` are imported only when used.
"""

from jepa.hub.convert import convert, download, save_hf, save_official
from jepa.hub.layouts import (
    configs_to_hf_config,
    detect_layout,
    hf_config_to_configs,
    hf_to_official,
    merge_fused,
    official_to_hf,
    split_fused,
    strip_prefixes,
)
from jepa.hub.pretrained import (
    Checkpoint,
    CheckpointError,
    Pretrained,
    check_encoder_architecture,
    load_encoder,
    load_encoder_weights,
    load_pretrained,
    load_state_dict_checked,
    read_checkpoint,
    save_pretrained,
)
from jepa.hub.sources import (
    OFFICIAL_FILES,
    ResolvedSource,
    SourceNotAvailableError,
    default_cache_dir,
    download_url,
    official_url,
    resolve_source,
)

__all__ = [
    "OFFICIAL_FILES",
    "Checkpoint",
    "CheckpointError",
    "Pretrained",
    "ResolvedSource",
    "SourceNotAvailableError",
    "check_encoder_architecture",
    "configs_to_hf_config",
    "convert",
    "default_cache_dir",
    "detect_layout",
    "download",
    "download_url",
    "hf_config_to_configs",
    "hf_to_official",
    "load_encoder",
    "load_encoder_weights",
    "load_pretrained",
    "load_state_dict_checked",
    "merge_fused",
    "official_to_hf",
    "official_url",
    "read_checkpoint",
    "resolve_source",
    "save_hf",
    "save_official",
    "save_pretrained",
    "split_fused",
    "strip_prefixes",
]
