"""LightningModules, one per recipe. Importing this package makes their short class names usable in YAML."""

from jepa.tasks.base import BaseTask, build_encoder, freeze
from jepa.tasks.features import FeatureExtractionTask
from jepa.tasks.pretrain import PretrainTask

__all__ = ["BaseTask", "FeatureExtractionTask", "PretrainTask", "build_encoder", "freeze"]
