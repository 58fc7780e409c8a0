"""The `jepa` CLI: help, shipped-config resolution, function commands, and a real predict run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from jepa.cli import SHIPPED_CONFIGS, main, resolve_config, shipped_configs

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])
    out = capsys.readouterr().out
    commands = ("fit", "validate", "test", "predict", "convert", "download", "configs", "export", "data", "ask", "plan")
    for command in commands:
        assert f"  {command} " in out


def test_unknown_command_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fitt"])
    assert exit_info.value.code == 2
    assert "Did you mean: fit" in capsys.readouterr().err


def test_configs_lists_shipped_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    rows = main(["configs"])
    assert "features/vitl_features.yaml" in rows
    assert len(rows) == len(shipped_configs())
    filtered = main(["configs", "--pattern", "features"])
    assert filtered and all("features" in row for row in filtered)


def test_resolve_config_prefers_local_file_then_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = str(SHIPPED_CONFIGS / "features" / "vitl_features.yaml")
    assert resolve_config("vitl_features.yaml") == shipped
    assert resolve_config("vitl_features") == shipped
    assert resolve_config("features/vitl_features.yaml") == shipped
    (tmp_path / "vitl_features.yaml").write_text("model: {}\n")
    assert resolve_config("vitl_features.yaml") == "vitl_features.yaml"


def test_resolve_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="Close shipped recipes: vitl_features.yaml"):
        resolve_config("vitl_featurs.yaml")
    with pytest.raises(FileNotFoundError, match="jepa configs"):
        resolve_config("nothing_like_it.yaml")


def _write_videos(directory: Path, count: int = 3) -> list[Path]:
    from jepa.data.encode import encode_video

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        frames = rng.integers(0, 255, size=(12, 40, 48, 3), dtype=np.uint8)
        path = directory / f"clip{index}.mp4"
        encode_video(path, frames, fps=8)
        paths.append(path)
    return paths


TINY_PREDICT = [
    "--model.encoder=vit_tiny",
    "--model.pretrained=false",
    '--model.encoder_overrides={"img_size": 32, "depth": 2}',
    "--data.crop_size=32",
    "--data.frames_per_clip=4",
    "--data.frame_step=2",
    "--data.num_workers=0",
    "--trainer.accelerator=cpu",
]


def test_predict_writes_features_from_shipped_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`jepa predict --config vitl_features.yaml` with sizes overridden, from another directory."""
    videos = _write_videos(tmp_path / "videos")
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video at all")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "features"
    main(
        ["predict", "--config", "vitl_features.yaml", f"--data.inputs={tmp_path / 'videos'}", *TINY_PREDICT]
        + [f"--trainer.callbacks.init_args.output_dir={out}"]
    )
    features = load_file(str(out / "predictions.safetensors"))["features"]
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert features.shape == (len(videos), 192)  # the unreadable file is skipped, not fatal
    assert [Path(row["path"]).name for row in rows] == [p.name for p in videos]
    assert np.isfinite(features.numpy()).all()


def test_console_script_runs_from_another_directory(tmp_path: Path) -> None:
    """The installed entry point (`python -m jepa`) finds shipped recipes outside the repository."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "jepa", "configs", "--pattern", "features"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "features/vitl_features.yaml" in result.stdout


def test_wheel_ships_configs_and_entry_point(tmp_path: Path) -> None:
    """The built wheel carries every YAML recipe and the `jepa` console script."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("jepa_lightning-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "jepa = jepa.cli:console_main" in archive.read(entry_points).decode()
    for config in shipped_configs():
        assert f"jepa/configs/{config.relative_to(SHIPPED_CONFIGS).as_posix()}" in names


def test_console_script_exits_zero_on_success(tmp_path: Path) -> None:
    """The installed `jepa` script (console_main) exits 0: main()'s return value is not an exit status."""
    script = Path(sys.executable).parent / "jepa"
    if not script.exists():
        pytest.skip("the jepa console script is not installed in this environment")
    result = subprocess.run([str(script), "configs", "--pattern", "probe/vitl_ssv2"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "probe/vitl_ssv2_probe.yaml"


def test_section_yaml_values_resolve_to_shipped_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jepa.cli import _resolve_config_arguments

    monkeypatch.chdir(tmp_path)
    args = _resolve_config_arguments(["fit", "-c", "quickstart.yaml", "--data", "videomix22m.yaml", "--model.lr=1"])
    assert args[2] == str(SHIPPED_CONFIGS / "pretrain" / "quickstart.yaml")
    assert args[4] == str(SHIPPED_CONFIGS / "data" / "videomix22m.yaml")
    assert args[5] == "--model.lr=1"
    (tmp_path / "mine.yaml").write_text("{}\n")
    assert _resolve_config_arguments(["--data=mine.yaml"]) == ["--data=mine.yaml"]


def test_convert_command_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`jepa convert SRC DST --to official|jepa` through the CLI keeps the weights bit-exact."""
    import torch

    from jepa.encoders import EncoderConfig, VideoViT
    from jepa.hub import load_pretrained, save_pretrained

    torch.manual_seed(0)
    encoder = VideoViT(EncoderConfig(embed_dim=48, depth=2, num_heads=4, img_size=32))
    save_pretrained(tmp_path / "start", encoder=encoder)
    main(["convert", str(tmp_path / "start"), str(tmp_path / "official.pt"), "--to", "official"])
    main(["convert", str(tmp_path / "official.pt"), str(tmp_path / "back"), "--to", "jepa"])
    assert str(tmp_path / "back") in capsys.readouterr().out
    back = load_pretrained(tmp_path / "back").encoder
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, back.state_dict()[key]), key


def test_resume_keeps_what_the_user_wrote_over_checkpoint_hparams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--ckpt_path`: the checkpoint's hyper-parameters fill in what the config and command line leave unset, and an
    explicit `--model.init_args.X` wins (Lightning 2.6 alone would apply the checkpoint's value on top)."""
    from jepa.data.synthetic import generate_synthetic_dataset

    generate_synthetic_dataset(tmp_path / "data" / "synth_swarm", kind="swarm", videos_per_class=2,
                               val_videos_per_class=0, frames=20)  # fmt: skip
    monkeypatch.chdir(tmp_path)
    tiny = ["--config", "quickstart_swarm.yaml", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.logger", "false",
            "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
            "--data.init_args.persistent_workers", "false",
            "--model.init_args.encoder_overrides", "{img_size: 64, num_frames: 8, depth: 1}",
            "--model.init_args.predictor_overrides", "{embed_dim: 48, depth: 1, num_heads: 2}"]  # fmt: skip
    first = main(["fit", *tiny, "--trainer.max_steps", "1", "--model.init_args.data_resume", "official",
                  "--model.init_args.start_lr", "1.0e-5"])  # fmt: skip
    assert first.model.data_resume == "official"
    (ckpt,) = (tmp_path / "runs" / "pretrain_quickstart_swarm").rglob("last.ckpt")

    # Unset by config and command line: the checkpoint's values (data_resume is not in the recipe).
    resumed = main(["fit", *tiny, "--trainer.max_steps", "2", "--ckpt_path", str(ckpt)])
    assert resumed.model.data_resume == "official" and resumed.trainer.global_step == 2
    # Set in the config (start_lr 6e-5 in quickstart_swarm.yaml): the config wins over the checkpoint's 1e-5.
    assert resumed.model.hparams["start_lr"] == pytest.approx(6.0e-5)
    # Given on the command line: it wins.
    explicit = main(["fit", *tiny, "--trainer.max_steps", "2", "--ckpt_path", str(ckpt),
                     "--model.init_args.data_resume", "replay"])  # fmt: skip
    assert explicit.model.data_resume == "replay" and explicit.trainer.global_step == 2
