"""Helpers for the tests that run `python -m jepa fit` in real subprocesses (DDP, SIGKILL + resume)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Callbacks used by the subprocesses, written next to the run so that `--trainer.callbacks+=cbs.X` can import them.
CALLBACKS = '''
import os, time, hashlib
import torch
import lightning.pytorch as pl


class Pause(pl.Callback):
    """Before the step `at_step` (0-based global step) write `marker` and sleep, so a test can kill the process."""

    def __init__(self, at_step: int, marker: str, seconds: float = 120.0):
        self.at_step, self.marker, self.seconds = at_step, marker, seconds

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at_step:
            open(self.marker, "w").close()
            time.sleep(self.seconds)


class Record(pl.Callback):
    """Per rank: the sample paths and a hash of every batch, and the final module state (`out_dir/rank{r}.*`)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.rows = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        data = batch[0][0]
        clips = data["clips"][0]
        digest = hashlib.sha1(clips.numpy().tobytes()).hexdigest()[:16]
        self.rows.append(f"{trainer.global_step} {digest} {' '.join(data['path'])}")

    def on_train_end(self, trainer, pl_module):
        os.makedirs(self.out_dir, exist_ok=True)
        rank = trainer.global_rank
        with open(os.path.join(self.out_dir, f"rank{rank}.txt"), "w") as f:
            f.write("\\n".join(self.rows) + "\\n")
        state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        torch.save(state, os.path.join(self.out_dir, f"rank{rank}.pt"))
'''

TINY = [
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
    "--trainer.log_every_n_steps",
    "1",
    "--data.init_args.batch_size",
    "2",
    "--data.init_args.num_workers",
    "0",
    "--data.init_args.persistent_workers",
    "false",
    "--model.init_args.encoder_overrides",
    "{img_size: 64, num_frames: 8, depth: 1}",
    "--model.init_args.predictor_overrides",
    "{embed_dim: 48, depth: 1, num_heads: 2}",
]


def make_workdir(root: Path) -> Path:
    """`root/data/synth_motion` (6 tiny motion videos) and `root/cbs.py` (the callbacks above)."""
    from jepa.data.synthetic import generate_synthetic_dataset

    generate_synthetic_dataset(root / "data" / "synth_motion", videos_per_class=1, val_videos_per_class=0, frames=20)
    (root / "cbs.py").write_text(CALLBACKS)
    return root


def env(root: Path) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(REPO), str(root)])
    out["OMP_NUM_THREADS"] = "1"  # one thread per process: deterministic and kind to the shared 2-core machine
    out["MKL_NUM_THREADS"] = "1"
    return out


def fit_command(run: str, max_steps: int, *extra: str) -> list[str]:
    """`python -m jepa fit` on the quickstart recipe, tiny, logging every step into `run/`."""
    return [
        sys.executable,
        "-m",
        "jepa",
        "fit",
        "--config",
        "quickstart.yaml",
        "--trainer.max_steps",
        str(max_steps),
        "--trainer.default_root_dir",
        run,
        "--trainer.logger.init_args.save_dir",
        run,
        *TINY,
        *extra,
    ]


def run_fit(root: Path, run: str, max_steps: int, *extra: str, timeout: float = 600) -> None:
    proc = subprocess.run(
        fit_command(run, max_steps, *extra), cwd=root, env=env(root), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(f"jepa fit failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def logged_losses(root: Path, run: str) -> dict[int, float]:
    """`train/loss` by global step (1-based, as logged) from every CSVLogger version under `root/run`."""
    out: dict[int, float] = {}
    for path in sorted((root / run).rglob("metrics.csv")):
        with open(path) as f:
            for row in csv.DictReader(f):
                if row.get("train/loss"):
                    out[int(row["step"]) + 1] = float(row["train/loss"])
    return out
