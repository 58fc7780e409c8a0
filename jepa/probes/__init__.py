"""Attentive probes on frozen encoders: the shared pooler, the classifier, probe checkpoint layouts, sweeps."""

from jepa.probes.anticipation import AnticipationProbe, AnticipationProbeConfig, infer_anticipation_probe_config
from jepa.probes.classifier import AttentiveClassifier, ProbeConfig
from jepa.probes.layouts import (
    detect_probe_layout,
    hf_probe_to_official,
    infer_probe_config,
    load_probe_state_dict,
    official_probe_state_dict,
    official_probe_to_hf,
    save_official_probe,
    to_official_probe_checkpoint,
)
from jepa.probes.pooler import AttentivePooler, CrossAttention, CrossAttentionBlock, SelfAttentionBlock
from jepa.probes.sweep import HeadHParams, HeadSchedule, ProbeSweep, sweep_grid

__all__ = [
    "AnticipationProbe",
    "AnticipationProbeConfig",
    "AttentiveClassifier",
    "AttentivePooler",
    "CrossAttention",
    "CrossAttentionBlock",
    "HeadHParams",
    "HeadSchedule",
    "ProbeConfig",
    "ProbeSweep",
    "SelfAttentionBlock",
    "detect_probe_layout",
    "hf_probe_to_official",
    "infer_anticipation_probe_config",
    "infer_probe_config",
    "load_probe_state_dict",
    "official_probe_state_dict",
    "official_probe_to_hf",
    "save_official_probe",
    "sweep_grid",
    "to_official_probe_checkpoint",
]
