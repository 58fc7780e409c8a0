"""The CPU learning check's parts, tiny: `quickstart_swarm.yaml` through the real CLI, then
`examples/probe_pretrained.py` on its checkpoint (random vs target vs context encoder, per-frame baselines, few
labels), and the shared-feature probes.

The full CLI check (3000 steps, 3000 videos, ~15 min) is documented in docs/pretraining.md; the default tests keep
its commands running, and the slow test (`-m slow`, ~13 min) asserts the learning itself with the in-memory harness.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jepa.data.csv_list import read_sample_list
from jepa.data.synthetic import generate_synthetic_dataset
from jepa.encoders.config import EncoderConfig
from jepa.encoders.vit import VideoViT
from jepa.evaluation import frozen_probe, frozen_probes, frozen_probes_per_train_set

ROOT = Path(__file__).resolve().parents[2]


def load_probe_script():
    """``examples/probe_pretrained.py`` as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("probe_pretrained", ROOT / "examples" / "probe_pretrained.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_swarm_recipe_and_probe_script(tmp_path, monkeypatch):
    from jepa.cli import main

    data = generate_synthetic_dataset(tmp_path / "data" / "synth_swarm", kind="swarm", videos_per_class=2,
                                      val_videos_per_class=1, frames=20)  # fmt: skip
    monkeypatch.chdir(tmp_path)
    cli = main(
        ["fit", "--config", "quickstart_swarm.yaml", "--trainer.max_steps", "2",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
         "--data.init_args.persistent_workers", "false",
         "--model.init_args.encoder_overrides", "{img_size: 64, num_frames: 8, depth: 1}",
         "--model.init_args.predictor_overrides", "{embed_dim: 48, depth: 1, num_heads: 2}"]
    )  # fmt: skip
    assert cli.trainer.global_step == 2 and cli.model.hparams["ema"] == [0.998, 0.998]
    (ckpt,) = (tmp_path / "runs" / "pretrain_quickstart_swarm").rglob("last.ckpt")

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "probe_pretrained.py"), str(ckpt), "--train", data.csvs["train"],
         "--val", data.csvs["val"], "--probes", "linear,temporal", "--frame-baseline", "--train-per-class", "1,0",
         "--json", str(tmp_path / "probe.json")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| encoder | linear | temporal |" in out.stdout and "4 classes, chance 25.0 %" in out.stdout
    assert "4 training videos (1 per class)" in out.stdout and "8 training videos (all per class)" in out.stdout
    result = json.loads((tmp_path / "probe.json").read_text())
    assert result["num_classes"] == 4 and [run["num_train"] for run in result["runs"]] == [4, 8]
    encoders = ("random", "target", "context", "frames_random", "frames_target")
    for run in result["runs"]:
        assert set(run) >= set(encoders)
        assert all(0.0 <= run[e][k][0] <= 100.0 for e in encoders for k in ("linear", "temporal"))

    too_many = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "probe_pretrained.py"), str(ckpt), "--train", data.csvs["train"],
         "--val", data.csvs["val"], "--probes", "linear", "--train-per-class", "3"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert too_many.returncode != 0 and "--train-per-class 3: class 0 has only 2 training videos" in too_many.stderr


def test_per_class_subset_is_seeded_and_balanced():
    samples = [(f"v{i}.mp4", i % 3) for i in range(30)]
    per_class_subset = load_probe_script().per_class_subset
    subset = per_class_subset(samples, 4, seed=0)
    assert sorted(label for _, label in subset) == [0] * 4 + [1] * 4 + [2] * 4
    assert subset == per_class_subset(samples, 4, seed=0) and subset != per_class_subset(samples, 4, seed=1)
    assert per_class_subset(samples, 0, seed=0) == samples


def test_frozen_probes_decode_once_and_match_single_probes(tmp_path):
    data = generate_synthetic_dataset(tmp_path, kind="swarm", videos_per_class=2, val_videos_per_class=1, frames=20)
    torch.manual_seed(0)
    encoder = VideoViT(EncoderConfig(img_size=64, num_frames=8, depth=1, embed_dim=64, num_heads=1))
    calls = []
    encoder.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    other = VideoViT(EncoderConfig(img_size=64, num_frames=8, depth=1, embed_dim=64, num_heads=1))
    several = frozen_probes({"a": encoder, "b": other}, data.csvs["train"], data.csvs["val"], 4,
                            probes={"linear": (20, 1e-2), "attentive": (10, 3e-3)})  # fmt: skip
    assert set(several) == {"a", "b"} and set(several["a"]) == {"linear", "attentive"}
    assert sum(calls) == 2 * 8 + 4  # 2 clips per training video + 1 per validation video, each encoded once
    single = frozen_probe(encoder, data.csvs["train"], data.csvs["val"], 4, probe="attentive", steps=10, lr=3e-3)
    assert single == several["a"]["attentive"]


def test_probes_per_train_set_encode_validation_once(tmp_path):
    data = generate_synthetic_dataset(tmp_path, kind="swarm", videos_per_class=2, val_videos_per_class=1, frames=20)
    torch.manual_seed(0)
    encoder = VideoViT(EncoderConfig(img_size=64, num_frames=8, depth=1, embed_dim=64, num_heads=1))
    calls = []
    encoder.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    train = read_sample_list(data.csvs["train"])
    subsets = [train, train[::2]]
    probes = {"linear": (20, 1e-2)}
    per_set = frozen_probes_per_train_set({"a": encoder}, subsets, data.csvs["val"], 4, probes=probes)
    assert sum(calls) == 2 * (8 + 4) + 4  # 2 clips per training video of each set; the 4 validation videos once
    for subset, results in zip(subsets, per_set, strict=True):
        assert results == frozen_probes({"a": encoder}, subset, data.csvs["val"], 4, probes=probes)


@pytest.mark.slow
def test_pretraining_lifts_a_linear_probe_far_above_a_random_encoder():
    """The learning check in memory (harness run Z41, seed 0; ~13 min on one thread): 3000 V-JEPA 2 steps on the
    fixed-appearance swarm lift a linear probe on mean-pooled frozen tokens from ~41 % (random encoder, chance 25 %)
    to ~93 %."""
    args = ["--pool", "3000", "--ntrain", "1000", "--nval", "500", "--lr", "3e-4", "--ema", "0.998",
            "--scene", "swarm", "--mono", "--classes", "left,right,up,down", "--nobj", "8", "--rmin", "0.05",
            "--rmax", "0.08", "--smin", "1", "--smax", "2", "--steps", "3000"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "learning_check.py"), *args],
        env=env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    probes = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in out.stdout.splitlines()
              if line.startswith(("random ", "target@", "context@"))}  # fmt: skip
    random, pretrained = probes["random"]["linear"][0], probes["target@3000"]["linear"][0]
    assert random < 55.0 and pretrained > 85.0 and pretrained - random > 30.0, probes
