"""Smoke test of the learning-check harness (`examples/learning_check.py`), so the documented commands keep running.

Runs the script as a user would, on a tiny in-memory set: short temporal mask blocks (``--masks B:S:T``), the L2
loss (``--loss_exp 2``), motion only between tubelets (``--hold 2``) and direction-reversal classes
(``left>right``), and bf16 autocast (``--bf16``), then checks the probe lines it prints.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*extra: str) -> list[tuple[str, dict]]:
    args = ["--steps", "2", "--pool", "8", "--ntrain", "8", "--nval", "8", "--bs", "4", "--depth", "1", "--width", "64"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "learning_check.py"), *args, *extra],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    tags = ("random ", "target@", "context@")
    lines = [line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith(tags)]
    return [(tag, json.loads(body)) for tag, body in lines]


def test_short_temporal_blocks_l2_hold_and_reversals():
    probes = _run(
        "--masks", "8:0.15:0.25-0.5,2:0.7:0.5", "--loss_exp", "2", "--hold", "2", "--classes", "left>right,right>left"
    )  # fmt: skip
    assert [tag for tag, _ in probes] == ["random", "target@2", "context@2"]
    for _, result in probes:
        assert {"linear", "temporal", "flat", "erank"} <= result.keys()
        assert all(0.0 <= result[k][0] <= 100.0 for k in ("linear", "temporal", "flat"))


def test_bf16_autocast():
    """`--bf16` (the GPU-scale command of docs/pretraining.md) runs pretraining and probes under autocast."""
    probes = _run("--bf16", "--device", "cpu")
    assert [tag for tag, _ in probes] == ["random", "target@2", "context@2"]
    assert all(0.0 <= result["linear"][0] <= 100.0 and result["erank"] >= 1.0 for _, result in probes)


def test_reversal_offsets():
    spec = importlib.util.spec_from_file_location("learning_check", ROOT / "examples" / "learning_check.py")
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    # "left>right" over 16 frames at 2 px/frame: 8 frames left (to -16 px), then 8 frames back to the start
    xs = [harness.offset("left>right", t, 16, 2.0)[0] for t in range(17)]
    assert xs[:9] == [-2.0 * t for t in range(9)]
    assert xs[8:] == [-16.0 + 2.0 * t for t in range(9)]
    assert harness.offset("up", 5, 16, 1.5) == (0.0, -7.5)
    assert harness.offset("down>up", 16, 16, 1.0) == (0.0, 0.0)
