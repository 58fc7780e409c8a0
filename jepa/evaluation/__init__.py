"""Evaluations of frozen encoders that need no Lightning run (e.g. a quick probe on cached features)."""

from jepa.evaluation.frozen_probe import (
    FrozenProbeResult,
    extract_features,
    extract_features_many,
    frozen_probe,
    frozen_probes,
    frozen_probes_per_train_set,
    train_probe,
)

__all__ = [
    "FrozenProbeResult",
    "extract_features",
    "extract_features_many",
    "frozen_probe",
    "frozen_probes",
    "frozen_probes_per_train_set",
    "train_probe",
]
