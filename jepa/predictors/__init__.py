"""Pure-torch V-JEPA 2 predictors; importing this package registers them in ``jepa.registry.PREDICTORS``."""

from jepa.predictors.config import PredictorConfig
from jepa.predictors.mask_predictor import MaskPredictor
from jepa.predictors.presets import infer_predictor_config, register_presets, vjepa2_predictor

register_presets()

__all__ = ["MaskPredictor", "PredictorConfig", "infer_predictor_config", "register_presets", "vjepa2_predictor"]
