"""Exact resume after SIGKILL: same per-step losses and the same final weights as an uninterrupted run.

Three real `python -m jepa fit` processes on the quickstart recipe (tiny sizes, CPU, `num_workers=0`, one thread):
A runs 6 steps; B checkpoints every 3 steps and is SIGKILLed while paused before step 5; C resumes B from its
step-3 checkpoint with `--ckpt_path`. `PretrainTask(data_resume="replay")` replays the consumed batches of the
loader epoch, so clips, masks and losses of C continue those of A bit for bit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import torch
from _cli_runs import env, fit_command, logged_losses, make_workdir, run_fit

CKPT = [
    "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
    "--trainer.callbacks.every_n_train_steps",
    "3",
    "--trainer.callbacks.save_top_k",
    "-1",
]


def _ckpt(root, run, step):
    (path,) = (root / run).rglob(f"*step={step}.ckpt")
    return torch.load(path, map_location="cpu", weights_only=True)


def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path):
    root = make_workdir(tmp_path)
    run_fit(root, "A", 6, *CKPT, "--trainer.callbacks.dirpath", "A/ckpt")

    marker = root / "paused"
    killed = subprocess.Popen(
        fit_command("B", 6, *CKPT, "--trainer.callbacks.dirpath", "B/ckpt",
                    "--trainer.callbacks+=cbs.Pause", "--trainer.callbacks.at_step", "4",
                    "--trainer.callbacks.marker", str(marker)),
        cwd=root, env=env(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert killed.poll() is None, f"run B ended early: {killed.stderr.read().decode()[-3000:]}"
            assert time.monotonic() < deadline, "run B never reached step 4"
            time.sleep(0.2)
        os.kill(killed.pid, signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    finally:
        if killed.poll() is None:
            killed.kill()
        killed.stderr.close()
    assert not list((root / "B").rglob("*step=6.ckpt"))  # B really died before the end
    (resume_from,) = (root / "B").rglob("*step=3.ckpt")
    run_fit(root, "B", 6, *CKPT, "--trainer.callbacks.dirpath", "B/ckpt", "--ckpt_path", str(resume_from))

    losses_a, losses_b = logged_losses(root, "A"), logged_losses(root, "B")
    assert sorted(losses_a) == [1, 2, 3, 4, 5, 6]
    assert set(losses_b) >= {4, 5, 6}  # the resumed process logged steps 4-6
    for step in (4, 5, 6):
        assert losses_b[step] == losses_a[step], (step, losses_a, losses_b)
    assert losses_a[4] != losses_a[5]  # the comparison is not trivially equal

    final_a, final_b = _ckpt(root, "A", 6), _ckpt(root, "B", 6)
    assert final_a["global_step"] == final_b["global_step"] == 6
    assert final_a["state_dict"].keys() == final_b["state_dict"].keys()
    for key, value in final_a["state_dict"].items():  # encoder, EMA target encoder, predictor
        assert torch.equal(value, final_b["state_dict"][key]), key
    opt_a, opt_b = final_a["optimizer_states"][0]["state"], final_b["optimizer_states"][0]["state"]
    for index, state in opt_a.items():
        assert torch.equal(state["exp_avg"], opt_b[index]["exp_avg"]), index
    data_a, data_b = final_a["jepa_pretrain"], final_b["jepa_pretrain"]
    # 7 collator calls (seeds 0..6): Lightning prefetches one batch of an unsized stream
    assert data_a == data_b and data_a["total_batches"] == 6 and data_a["mask_counters"] == [[6, 6]]
