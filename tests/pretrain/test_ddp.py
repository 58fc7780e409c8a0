"""DDP on CPU (gloo): two real ranks of `python -m jepa fit` see different data and end with identical weights."""

from __future__ import annotations

import torch
from _cli_runs import make_workdir, run_fit


def test_two_ranks_see_different_data_and_end_identical(tmp_path):
    root = make_workdir(tmp_path)
    out = root / "record"
    run_fit(
        root,
        "ddp",
        3,
        "--trainer.strategy",
        "ddp_find_unused_parameters_true",  # as the shipped recipes: unused predictor mask tokens
        "--trainer.devices",
        "2",
        "--trainer.accelerator",
        "cpu",
        "--trainer.callbacks+=cbs.Record",
        "--trainer.callbacks.out_dir",
        str(out),
    )
    rows = [(out / f"rank{r}.txt").read_text().split("\n")[:-1] for r in (0, 1)]
    assert len(rows[0]) == len(rows[1]) == 3  # 3 batches per rank
    hashes = [{row.split()[1] for row in rank_rows} for rank_rows in rows]
    assert not hashes[0] & hashes[1], rows  # no batch seen by both ranks
    paths = [[row.split()[2:] for row in rank_rows] for rank_rows in rows]
    assert paths[0] != paths[1], paths  # the mixture stream is split by rank (seeded with the rank)

    states = [torch.load(out / f"rank{r}.pt", map_location="cpu", weights_only=True) for r in (0, 1)]
    initial = {k for k in states[0] if k.startswith(("encoder.", "target_encoder.", "predictor."))}
    assert initial == set(states[0]) == set(states[1])
    for key, value in states[0].items():  # gradients all-reduced, EMA applied identically on every rank
        assert torch.equal(value, states[1][key]), key
