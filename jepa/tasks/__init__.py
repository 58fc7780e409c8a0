"""LightningModules, one per recipe. Importing this package makes their short class names usable in YAML."""

from jepa.tasks.action_conditioned import ActionConditionedTask
from jepa.tasks.anticipation import AnticipationTask
from jepa.tasks.base import BaseTask, build_encoder, freeze
from jepa.tasks.features import FeatureExtractionTask
from jepa.tasks.pretrain import PretrainTask
from jepa.tasks.probe import ProbeTask, read_class_map
from jepa.tasks.video_qa import VideoQATask

__all__ = [
    "ActionConditionedTask",
    "AnticipationTask",
    "BaseTask",
    "FeatureExtractionTask",
    "PretrainTask",
    "ProbeTask",
    "build_encoder",
    "freeze",
    "read_class_map",
    "VideoQATask",
]
