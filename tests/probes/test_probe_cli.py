"""`jepa fit` then `jepa validate` (with the exported official-layout probe) on every shipped probe config.

Only sizes and paths are overridden: a random-init 4-block encoder of width 32, a 2-block pooler, 32 px, 4 frames,
one epoch of one training batch and one validation batch of 2 videos (segments, views, sweep grids and schedules as
shipped). `quickstart_swarm_probe.yaml` (4 classes) is run on tiny swarm videos, and `jepa predict` with its
exported probe file too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jepa.cli import SHIPPED_CONFIGS, main

PROBE_CONFIGS = sorted((SHIPPED_CONFIGS / "probe").glob("*.yaml"))


def _args(config: Path, tmp_path: Path, data: dict[str, str], command: str = "fit") -> list[str]:
    args = [command, "--config", str(config)]
    for split, path in data.items():
        args += [f"--data.{split}", path]
    if "out_layers" in config.read_text():  # multilevel configs: the same 4 levels of a 4-block encoder
        args += ["--model.init_args.out_layers", "[0, 1, 2, 3]"]
    args += [
        "--data.frames_per_clip", "4", "--data.crop_size", "32", "--data.batch_size", "2", "--data.num_workers", "0",
        "--model.init_args.pretrained", "false",
        "--model.init_args.encoder_overrides", "{embed_dim: 32, depth: 4, num_heads: 2, img_size: 32, num_frames: 4}",
        "--model.init_args.probe_depth", "2",
        "--model.init_args.export_best_probe", str(tmp_path / "probe.pt"),
        "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1",
        "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
        "--trainer.num_sanity_val_steps", "0", "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
    ]  # fmt: skip
    return args


def test_every_probe_config_is_tested() -> None:
    names = {p.name for p in PROBE_CONFIGS}
    for model in ("vitl", "vitg384"):
        for task in ("ssv2", "diving48", "jester", "k400", "coin", "in1k"):
            assert f"{model}_{task}_probe.yaml" in names


@pytest.mark.parametrize("config", PROBE_CONFIGS, ids=lambda p: p.stem)
def test_fit_then_validate_with_exported_probe(
    config: Path, tmp_path: Path, tiny_videos, tiny_swarm, tiny_images
) -> None:
    torch.manual_seed(0)
    if "in1k" in config.name:
        data = {"train": str(tiny_images / "train"), "val": str(tiny_images / "val")}
    elif "swarm" in config.name:  # 4 classes: the swarm directions
        data = {"train": tiny_swarm.csvs["train"], "val": tiny_swarm.csvs["val"]}
    else:
        # The spelling of the flagship command: --data.train_csv ... --data.val_csv ...
        data = {"train_csv": tiny_videos.csvs["train"], "val_csv": tiny_videos.csvs["val"]}
    cli = main(_args(config, tmp_path, data))
    task = cli.model
    assert cli.trainer.global_step == 1
    assert not any(p.requires_grad for p in task.encoder.parameters())
    assert not any(k.startswith("encoder.") for k in task.state_dict())  # frozen encoder not checkpointed
    assert len(cli.trainer.optimizers[0].param_groups) == len(task.sweep)
    fit_top1 = cli.trainer.callback_metrics["val/best_top1"]
    exported = torch.load(tmp_path / "probe.pt", weights_only=True)
    assert len(exported["classifiers"]) == 1 and all(k.startswith("module.") for k in exported["classifiers"][0])

    validate = main(
        _args(config, tmp_path, data, "validate") + ["--model.init_args.probe_checkpoint", str(tmp_path / "probe.pt")]
    )
    # The encoder is rebuilt with the same seed; the exported best head reproduces its validation accuracy as head 0.
    best = int(task.best_head)
    torch.testing.assert_close(validate.model.sweep.heads[0].linear.weight, task.sweep.heads[best].linear.weight)
    assert "val/best_top1" in validate.trainer.callback_metrics
    assert validate.trainer.callback_metrics["val/top1/head_0"] >= 0 and fit_top1 >= 0


def test_predict_with_a_trained_probe_file(tmp_path: Path, tiny_swarm) -> None:
    """`jepa predict` on a folder of videos with the probe file `jepa fit` exported: top-k class names and scores per
    video, written by `PredictionWriter` (the documented command of docs/probes.md, at tiny sizes)."""
    config = SHIPPED_CONFIGS / "probe" / "quickstart_swarm_probe.yaml"
    torch.manual_seed(0)
    main(_args(config, tmp_path, {"train": tiny_swarm.csvs["train"], "val": tiny_swarm.csvs["val"]}))
    videos = Path(tiny_swarm.root) / "val"
    main([
        "predict", "--config", str(config), "--data", "jepa.data.inference.VideoFilesDataModule",
        "--data.inputs", str(videos), "--data.frames_per_clip", "4", "--data.fps", "4", "--data.frame_step", "null",
        "--data.crop_size", "32", "--data.batch_size", "2",
        "--model.init_args.pretrained", "false",
        "--model.init_args.encoder_overrides", "{embed_dim: 32, depth: 4, num_heads: 2, img_size: 32, num_frames: 4}",
        "--model.init_args.probe_depth", "2", "--model.init_args.export_best_probe", "null",
        "--model.init_args.probe_checkpoint", str(tmp_path / "probe.pt"),
        "--model.init_args.class_map", tiny_swarm.class_map, "--model.init_args.predict_top_k", "2",
        "--trainer.callbacks+=jepa.callbacks.PredictionWriter", "--trainer.callbacks.output_dir", str(tmp_path / "out"),
        "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir",
        str(tmp_path),
    ])  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert sorted(Path(row["path"]).parent.name for row in rows) == ["down", "left", "right", "up"]
    for row in rows:
        assert len(row["top_labels"]) == 2 and set(row["top_labels"]) <= {"left", "right", "up", "down"}
        assert row["top_scores"][0] >= row["top_scores"][1] and 0.0 < sum(row["top_scores"]) <= 1.0 + 1e-6


def test_fast_sweep_flags(tmp_path: Path, tiny_videos) -> None:
    """The fast sweep of docs/benchmarks.md through the CLI: 1-block stacked heads with torch's fused AdamW."""
    config = SHIPPED_CONFIGS / "probe" / "vitl_ssv2_probe.yaml"
    data = {"train_csv": tiny_videos.csvs["train"], "val_csv": tiny_videos.csvs["val"]}
    args = _args(config, tmp_path, data) + ["--model.init_args.probe_depth", "1", "--model.init_args.probe_stacked",
                                            "true", "--model.init_args.fused_adamw", "true"]  # fmt: skip
    cli = main(args)
    optimizer = cli.trainer.optimizers[0]
    assert optimizer.defaults["fused"] is True and len(optimizer.param_groups) == 20
    assert cli.trainer.global_step == 1 and "val/best_top1" in cli.trainer.callback_metrics
