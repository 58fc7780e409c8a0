"""`jepa fit` then `jepa validate` (exported official-layout probe + class mapping) on every shipped EK100 recipe.

Only sizes and paths are overridden: a random 2-block encoder of width 32, a 1-block predictor, a 1-block pooler,
32 px, 8 frames, one training and one validation batch (sweep grid, focal loss, bf16 and sampling as shipped).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jepa.cli import SHIPPED_CONFIGS, main
from jepa.data.ek100 import ClassMapping

CONFIGS = sorted((SHIPPED_CONFIGS / "anticipation").glob("*.yaml"))


def _args(config: Path, tmp_path: Path, data, command: str = "fit") -> list[str]:
    return [
        command, "--config", str(config), "--data.train", data.train, "--data.val", data.val,
        "--data.frames_per_clip", "8", "--data.crop_size", "32", "--data.batch_size", "2", "--data.num_workers", "0",
        "--model.init_args.pretrained", "false",
        "--model.init_args.encoder_overrides", "{embed_dim: 32, depth: 2, num_heads: 2, img_size: 32, num_frames: 8}",
        "--model.init_args.predictor_overrides", "{embed_dim: 32, depth: 1, num_heads: 2}",
        "--model.init_args.probe_depth", "1",
        "--model.init_args.export_best_probe", str(tmp_path / "probe.pt"),
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
        "--trainer.num_sanity_val_steps", "0", "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
    ]  # fmt: skip


def test_both_recipes_shipped() -> None:
    assert {p.name for p in CONFIGS} >= {"vitl_ek100.yaml", "vitg384_ek100.yaml"}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_fit_then_validate_exported_probe(config: Path, tmp_path: Path, tiny_anticipation) -> None:
    torch.manual_seed(0)
    cli = main(_args(config, tmp_path, tiny_anticipation))
    task = cli.model
    assert cli.trainer.global_step == 1 and len(task.sweep) == 20  # the paper's 5 x 4 grid
    assert cli.trainer.precision == "bf16-mixed"
    assert not any(k.startswith(("encoder.", "predictor.")) for k in task.state_dict())
    exported = torch.load(tmp_path / "probe.pt", weights_only=True)
    keys = exported["classifiers"][0]
    assert keys["module.pooler.query_tokens"].shape == (1, 3, 32)
    assert {"module.verb_classifier.weight", "module.noun_classifier.weight", "module.action_classifier.weight"} <= set(
        keys
    )
    mapping = ClassMapping.load(tmp_path / "probe.classes.json")
    assert mapping.actions == cli.datamodule.class_mapping.actions

    validate = main(
        _args(config, tmp_path, tiny_anticipation, "validate")
        + ["--model.init_args.probe_checkpoint", str(tmp_path / "probe.pt"),
           "--data.class_mapping", str(tmp_path / "probe.classes.json")]
    )  # fmt: skip
    best = int(task.best_head)
    torch.testing.assert_close(
        validate.model.sweep.heads[0].action_classifier.weight, task.sweep.heads[best].action_classifier.weight
    )
    assert validate.trainer.callback_metrics["val/action_recall5"] >= 0
