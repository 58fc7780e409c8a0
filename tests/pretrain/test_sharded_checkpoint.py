"""Sharded FSDP2 checkpoints (`save_distributed_checkpoint: true`): a directory that `jepa export` and
`PretrainTask(anneal_from=...)` read like a `.ckpt` file (`jepa.checkpoints.load_lightning_checkpoint`).

One real 2-rank gloo `python -m jepa fit` writes the sharded directory, a second identical run writes the full-state
file; the directory, gathered in this process, must hold exactly the file's weights, AdamW moments and metadata.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp
from _cli_runs import env, make_workdir, run_fit
from test_fsdp import FSDP_RECIPE, TWO_CPU_RANKS, _moments_by_position

import jepa
from jepa.checkpoints import (
    DCP_METADATA,
    LIGHTNING_META,
    checkpoint_state_keys,
    is_sharded_checkpoint,
    load_lightning_checkpoint,
    read_dcp_metadata,
)
from jepa.tasks.pretrain import PretrainTask, _check_checkpoint_keys, _load_optimizer_state

STEPS = 2
SHARDED = "save_distributed_checkpoint: true"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`(root, sharded directory, full-state file)` of two identical 2-rank FSDP2 runs."""
    root = make_workdir(tmp_path_factory.mktemp("sharded"))
    assert "save_distributed_checkpoint: false" in FSDP_RECIPE
    sharded_recipe = FSDP_RECIPE.replace("save_distributed_checkpoint: false", SHARDED)
    (root / "sharded.yaml").write_text(sharded_recipe.format(dirpath=root / "sharded_ckpts"))
    (root / "full.yaml").write_text(FSDP_RECIPE.format(dirpath=root / "full_ckpts"))
    run_fit(root, "sharded", STEPS, "--config", "sharded.yaml", *TWO_CPU_RANKS)
    run_fit(root, "full", STEPS, "--config", "full.yaml", *TWO_CPU_RANKS)
    return root, root / "sharded_ckpts" / f"step={STEPS}.ckpt", root / "full_ckpts" / f"step={STEPS}.ckpt"


@pytest.fixture(scope="module")
def loaded(runs):
    """`(gathered directory, full file)` as dicts."""
    _, directory, full = runs
    return load_lightning_checkpoint(directory), torch.load(full, map_location="cpu", weights_only=True)


def _without_params(groups: list[dict]) -> list[dict]:
    return [{k: v for k, v in g.items() if k != "params"} for g in groups]


def test_sharded_directory_gathers_to_the_full_state_checkpoint(runs, loaded):
    _, directory, full = runs
    assert directory.is_dir() and full.is_file()
    assert is_sharded_checkpoint(directory) and not is_sharded_checkpoint(full)
    assert sorted(p.name for p in directory.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]  # one per rank
    index = read_dcp_metadata(directory).state_dict_metadata
    qkv = index["state_dict.encoder.blocks.0.attn.qkv.weight"]
    assert len(qkv.chunks) == 2 and qkv.chunks[1].offsets[0] > 0  # really sharded along dim 0 over the two ranks

    gathered, reference = loaded
    assert sorted(gathered) == sorted(reference)
    for key in ("global_step", "epoch", "hyper_parameters", "jepa_pretrain", "loops", "lr_schedulers"):
        assert gathered[key] == reference[key], key
    assert gathered["global_step"] == STEPS
    # Model state: plain full tensors, same names, order, shapes and values (bit for bit) as the full-state file.
    assert list(gathered["state_dict"]) == list(reference["state_dict"])
    for key, value in reference["state_dict"].items():
        assert type(gathered["state_dict"][key]) is torch.Tensor
        assert torch.equal(gathered["state_dict"][key], value), key
    # Optimizer: the same groups and AdamW moments; parameters numbered by position in group order.
    (opt,), (ref_opt,) = gathered["optimizer_states"], reference["optimizer_states"]
    assert _without_params(opt["param_groups"]) == _without_params(ref_opt["param_groups"])
    ids = [pid for group in opt["param_groups"] for pid in group["params"]]
    assert ids == list(range(len(ids))) and set(opt["state"]) <= set(ids)
    moments, ref_moments = _moments_by_position(opt), _moments_by_position(ref_opt)
    assert moments.keys() == ref_moments.keys() and moments
    for pos, state in ref_moments.items():
        assert state.keys() == moments[pos].keys()
        for key, value in state.items():
            assert torch.equal(moments[pos][key], value), (pos, key)
    assert any(s["exp_avg"].abs().max() > 0 for s in moments.values())


def test_jepa_export_cli_reads_the_sharded_directory(runs, loaded, tmp_path):
    root, directory, _ = runs
    out = tmp_path / "exported"
    proc = subprocess.run(
        [sys.executable, "-m", "jepa", "export", str(directory), str(out)],
        cwd=root,
        env=env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    exported = jepa.load_pretrained(out)
    state = loaded[0]["state_dict"]
    for module, prefix in ((exported.encoder, "target_encoder."), (exported.predictor, "predictor.")):
        expected = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        own = module.state_dict()
        assert own.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(own[key], value), prefix + key


def test_anneal_from_the_sharded_directory_loads_weights_and_optimizer_like_the_file(runs, loaded):
    _, directory, full = runs
    hparams = {k: v for k, v in loaded[0]["hyper_parameters"].items() if not k.startswith("_")}
    tasks = {src: PretrainTask(**{**hparams, "anneal_from": str(src)}) for src in (directory, full)}
    state = loaded[1]["state_dict"]
    for name in ("encoder", "predictor", "target_encoder"):
        for key, value in getattr(tasks[directory], name).state_dict().items():
            assert torch.equal(value, state[f"{name}.{key}"]), f"{name}.{key}"
    # The AdamW state lands on the same parameters whichever checkpoint it comes from (loaded by group position).
    optimizer_states = {}
    for src, task in tasks.items():
        optimizer = task.configure_optimizers()
        _load_optimizer_state(task, optimizer, task._anneal_optimizer_state)
        names = {id(p): n for n, p in task.named_parameters()}
        optimizer_states[src] = {names[id(p)]: s for p, s in optimizer.state.items()}
    from_dir, from_file = optimizer_states[directory], optimizer_states[full]
    assert from_dir.keys() == from_file.keys() and "encoder.blocks.0.attn.qkv.weight" in from_dir
    for name, moments in from_file.items():
        for key, value in moments.items():
            assert torch.equal(from_dir[name][key], value), (name, key)
    qkv = dict(tasks[directory].named_parameters())["encoder.blocks.0.attn.qkv.weight"]
    assert from_dir["encoder.blocks.0.attn.qkv.weight"]["exp_avg"].shape == qkv.shape


def test_checkpoint_keys_come_from_the_directory_index(runs, loaded):
    _, directory, full = runs
    assert checkpoint_state_keys(directory) == checkpoint_state_keys(full) == set(loaded[1]["state_dict"])
    hparams = {k: v for k, v in loaded[0]["hyper_parameters"].items() if not k.startswith("_")}
    task = PretrainTask(**hparams)
    _check_checkpoint_keys(task, str(directory))  # complete: no error
    task.register_buffer("extra_buffer", torch.zeros(1))
    with pytest.raises(KeyError, match="extra_buffer"):
        _check_checkpoint_keys(task, str(directory))


@pytest.mark.slow  # a third 2-rank run (~15 s on the loaded 2-core machine)
def test_resuming_from_the_sharded_directory_is_exact(runs):
    """Lightning's sharded loader asks for the AdamW state of every parameter; the task fills the state of the
    never-used predictor mask tokens (`_fill_unused_optimizer_state`), so `--ckpt_path DIR` resumes exactly."""
    root, directory, _ = runs
    (root / "resume.yaml").write_text(
        FSDP_RECIPE.replace("save_distributed_checkpoint: false", SHARDED).format(dirpath=root / "resumed")
    )
    first = directory.parent / "step=1.ckpt"
    run_fit(root, "resumed", STEPS, "--config", "resume.yaml", *TWO_CPU_RANKS, "--ckpt_path", str(first))
    straight = load_lightning_checkpoint(directory)
    resumed = load_lightning_checkpoint(root / "resumed" / f"step={STEPS}.ckpt")
    assert resumed["global_step"] == straight["global_step"] == STEPS
    for key, value in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    assert resumed["jepa_pretrain"] == straight["jepa_pretrain"]
    moments, expected = (
        _moments_by_position(resumed["optimizer_states"][0]),
        _moments_by_position(straight["optimizer_states"][0]),
    )
    assert moments.keys() == expected.keys()
    for index, state in expected.items():
        for name, value in state.items():
            assert torch.equal(moments[index][name], value), (index, name)


# ------------------------------------------------------------------------- single-process checks (no training run)
@dataclass
class _NotATensor:
    value: int = 1


def _write_sharded(directory: Path, state: dict, meta: dict | None) -> None:
    """A DCP directory written by this one process (+ Lightning's `meta.pt` when `meta` is given)."""
    with warnings.catch_warnings():  # "torch.distributed is disabled ... single process": intended
        warnings.simplefilter("ignore", UserWarning)
        dcp.save(state, checkpoint_id=directory, no_dist=True)
    if meta is not None:
        torch.save(meta, directory / LIGHTNING_META)


def test_directory_layout_becomes_the_file_layout(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    order = [["0.weight", "1.weight"], ["0.bias", "1.bias"]]  # group order differs from model.parameters() order
    params = dict(model.named_parameters())
    optimizer = torch.optim.AdamW([{"params": [params[n] for n in names]} for names in order])
    state = {n: {"step": torch.tensor(2.0), "exp_avg": torch.randn_like(p)} for n, p in params.items()}
    groups = [
        {**{k: v for k, v in g.items() if k != "params"}, "params": names}
        for g, names in zip(optimizer.param_groups, order, strict=True)
    ]  # the name-keyed layout of torch.distributed.checkpoint.state_dict.get_optimizer_state_dict
    saved = {"state_dict": dict(model.state_dict()), "optimizer_0": {"state": state, "param_groups": groups}}
    _write_sharded(tmp_path / "ckpt", saved, {"global_step": 7, "hyper_parameters": {"ema": (0.99, 1.0)}})

    out = load_lightning_checkpoint(tmp_path / "ckpt")
    assert sorted(out) == ["global_step", "hyper_parameters", "optimizer_states", "state_dict"]
    assert out["global_step"] == 7 and out["hyper_parameters"] == {"ema": (0.99, 1.0)}
    assert list(out["state_dict"]) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(out["state_dict"][key], value), key
    (opt,) = out["optimizer_states"]
    assert [g["params"] for g in opt["param_groups"]] == [[0, 1], [2, 3]]  # position in group order
    assert _without_params(opt["param_groups"]) == _without_params(optimizer.state_dict()["param_groups"])
    # What a plain optimizer accepts: every moment lands on the parameter it was saved for.
    optimizer.load_state_dict(opt)
    for name, param in params.items():
        assert torch.equal(optimizer.state[param]["exp_avg"], state[name]["exp_avg"]), name
    # A single file goes through torch.load(weights_only=True) unchanged.
    torch.save(out, tmp_path / "file.ckpt")
    assert load_lightning_checkpoint(tmp_path / "file.ckpt")["global_step"] == 7


def test_unreadable_paths_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing exists there"):
        load_lightning_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "weights.pt").touch()
    with pytest.raises(FileNotFoundError, match=r"plain: expected .* containing '\.metadata'.*weights\.pt"):
        load_lightning_checkpoint(tmp_path / "plain")
    _write_sharded(
        tmp_path / "two", {"state_dict": {"w": torch.ones(2)}, "optimizer_1": {"param_groups": [{"lr": 0.1}]}}, None
    )
    with pytest.raises(KeyError, match="optimizer_0"):
        load_lightning_checkpoint(tmp_path / "two")


class _Payload:
    def __reduce__(self):
        return (print, ("must not run",))


def test_nothing_outside_the_metadata_classes_is_unpickled(tmp_path, capsys):
    torch.manual_seed(0)
    weight = torch.randn(3)
    _write_sharded(tmp_path / "ok", {"state_dict": {"w": weight}}, {"global_step": 1})
    assert torch.equal(load_lightning_checkpoint(tmp_path / "ok")["state_dict"]["w"], weight)
    # A '.metadata' that references anything else (here builtins.print) is refused before it is called.
    (tmp_path / "ok" / DCP_METADATA).write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load builtins\.print"):
        load_lightning_checkpoint(tmp_path / "ok")
    assert "must not run" not in capsys.readouterr().out
    # Non-tensor leaves load with weights_only=True: an arbitrary object is refused.
    _write_sharded(tmp_path / "obj", {"state_dict": {"w": torch.ones(1)}, "extra": _NotATensor()}, None)
    with pytest.raises(pickle.UnpicklingError, match=r"obj: the non-tensor entry 'extra' .*_NotATensor"):
        load_lightning_checkpoint(tmp_path / "obj")
