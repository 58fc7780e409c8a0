"""Smoke test of the learning-check harness (`examples/learning_check.py`), so the documented commands keep running.

Runs the script as a user would, on a tiny in-memory set: short temporal mask blocks (``--masks B:S:T``), the L2
loss (``--loss_exp 2``) and motion only between tubelets (``--hold 2``), then checks the probe lines it prints.
"""

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


def test_short_temporal_blocks_l2_and_hold():
    probes = _run("--masks", "8:0.15:0.25-0.5,2:0.7:0.5", "--loss_exp", "2", "--hold", "2")
    assert [tag for tag, _ in probes] == ["random", "target@2", "context@2"]
    for _, result in probes:
        assert {"linear", "temporal", "flat", "erank"} <= result.keys()
        assert all(0.0 <= result[k][0] <= 100.0 for k in ("linear", "temporal", "flat"))
