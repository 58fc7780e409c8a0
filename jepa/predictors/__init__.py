"""Pure-torch V-JEPA 2 predictors; importing this package registers them in ``jepa.registry.PREDICTORS``."""

from jepa.predictors.action_conditioned import (
    ACPredictor,
    ACPredictorConfig,
    ac_predictor_tiny,
    load_official_ac_predictor,
    vjepa2_ac_vitg,
)
from jepa.predictors.config import PredictorConfig
from jepa.predictors.kv_cache import KVCache
from jepa.predictors.mask_predictor import MaskPredictor
from jepa.predictors.presets import infer_predictor_config, register_presets, vjepa2_predictor

register_presets()

__all__ = [
    "ACPredictor",
    "ACPredictorConfig",
    "KVCache",
    "MaskPredictor",
    "PredictorConfig",
    "ac_predictor_tiny",
    "infer_predictor_config",
    "load_official_ac_predictor",
    "register_presets",
    "vjepa2_ac_vitg",
    "vjepa2_predictor",
]
