"""Video data: decoding, clip sampling, transforms, datasets, WebDataset shards, mixing, data modules, synthetic data.

Names are imported lazily on first access (importing `jepa.data` does not import Lightning, PyAV or webdataset).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # errors / decoding / sampling / clips / transforms (part A)
    "BadSampleError": "errors",
    "VideoInfo": "decoding",
    "probe_video": "decoding",
    "decode_frames": "decoding",
    "ClipSampling": "sampling",
    "sample_clip_indices": "sampling",
    "ClipSample": "clips",
    "load_clips": "clips",
    "PretrainTransform": "transforms",
    "EvalTransform": "transforms",
    "ProbeTrainTransform": "transforms",
    # lists, datasets, shards, mixing, data modules, synthetic data (part B)
    "CSVFormatError": "csv_list",
    "SampleList": "csv_list",
    "VideoSampleRef": "csv_list",
    "read_sample_list": "csv_list",
    "scan_image_folder": "image_folder",
    "SkipCounter": "stats",
    "VideoClipDataset": "datasets",
    "ShardDataset": "shards",
    "ShardWriteResult": "shards",
    "EpochDataLoader": "shards",
    "write_shards": "shards",
    "expand_shard_urls": "shards",
    "assign_shards": "shards",
    "MixtureSource": "mixing",
    "WeightedMixture": "mixing",
    "DistributedWeightedSampler": "mixing",
    "DataSource": "datamodules",
    "VideoClassificationDataModule": "datamodules",
    "PretrainDataModule": "datamodules",
    "ImageAsVideoDataModule": "datamodules",
    "collate_samples": "datamodules",
    "collate_by_fpc": "datamodules",
    "VideoFilesDataModule": "inference",
    "EK100DataModule": "ek100",
    "AnticipationVideosDataModule": "ek100",
    "ClassMapping": "ek100",
    "generate_anticipation_dataset": "anticipation_synth",
    "MaskConfig": "masks",
    "MaskCollator": "masks",
    "MultiBlockMaskGenerator": "masks",
    "vjepa2_mask_configs": "masks",
    "encode_video": "encode",
    "encode_video_bytes": "encode",
    "encode_image": "encode",
    "MotionSpec": "synthetic",
    "render_motion_clip": "synthetic",
    "render_motion_sequence": "synthetic",
    "render_static_clip": "synthetic",
    "render_swarm_clip": "synthetic",
    "generate_synthetic_dataset": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jepa.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"jepa.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
