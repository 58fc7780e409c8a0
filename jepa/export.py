"""``jepa export``: turn a Lightning pretraining checkpoint into a released-style checkpoint.

A :class:`jepa.tasks.pretrain.PretrainTask` ``.ckpt`` holds the context encoder, the EMA target encoder, the
predictor, optimizer and loop state. Export keeps the weights only, in one of the layouts of :mod:`jepa.hub`:

- ``jepa``: ``config.json`` + ``model.safetensors`` (:func:`jepa.hub.save_pretrained`); loads with
  :func:`jepa.load_pretrained` / ``VideoViT.from_pretrained``.
- ``official``: ``DIR/model.pt`` like the released ``vitl.pt``: ``encoder`` (context), ``target_encoder`` (EMA),
  ``predictor`` with ``module.backbone.`` prefixes, ``epoch``, and a ``jepa`` entry with the architecture; usable as
  ``PretrainTask(anneal_from=...)`` to continue training.
- ``hf``: a transformers ``VJEPA2Model`` directory (:func:`jepa.hub.save_hf`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from jepa.checkpoints import load_lightning_checkpoint

ExportLayout = Literal["jepa", "official", "hf"]
WhichEncoder = Literal["target_encoder", "encoder"]


def task_from_checkpoint(ckpt: str | os.PathLike[str]) -> Any:
    """Rebuild the :class:`~jepa.tasks.pretrain.PretrainTask` of a Lightning checkpoint with its weights.

    ``ckpt`` is a ``.ckpt`` file or a sharded directory of ``ModelParallelStrategy(save_distributed_checkpoint=
    True)``, gathered in this process (:func:`jepa.checkpoints.load_lightning_checkpoint`). The architecture comes
    from the checkpoint's ``hyper_parameters`` (encoder name and overrides, predictor overrides); ``anneal_from`` is
    not re-read. Loading is strict.
    """
    return _task_and_step(ckpt)[0]


def _task_and_step(ckpt: str | os.PathLike[str]) -> tuple[Any, int]:
    """:func:`task_from_checkpoint` plus the checkpoint's ``global_step`` (the checkpoint is read once)."""
    from jepa.tasks.pretrain import PretrainTask

    path = os.fspath(ckpt)
    checkpoint = load_lightning_checkpoint(path)
    if "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise KeyError(
            f"export: {path} has keys {sorted(checkpoint)[:8]}; expected a Lightning checkpoint of PretrainTask "
            "('state_dict' and 'hyper_parameters')"
        )
    hparams = dict(checkpoint["hyper_parameters"])
    if not isinstance(hparams.get("encoder"), str):
        raise ValueError(
            f"export: {path} was trained with an encoder module, not a registry name; its architecture is not in "
            "the checkpoint. Rebuild the task yourself and use jepa.hub.save_pretrained"
        )
    hparams["anneal_from"] = None
    for key in [k for k in hparams if k.startswith("_")]:  # LightningCLI's _instantiator / _class_path
        hparams.pop(key)
    task = PretrainTask(**hparams)
    task.load_state_dict(checkpoint["state_dict"], strict=True)
    return task, int(checkpoint.get("global_step", 0))


def _cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def export(ckpt: str, output_dir: str, to: ExportLayout = "jepa", which: WhichEncoder = "target_encoder") -> Path:
    """Export the encoder and predictor of a pretraining checkpoint (Lightning ``.ckpt``) to a released layout.

    Args:
        ckpt: a Lightning checkpoint (``.ckpt`` file or a sharded ``save_distributed_checkpoint: true``
            directory) written while training :class:`jepa.tasks.pretrain.PretrainTask`.
        output_dir: output directory (created).
        to: ``jepa`` (config.json + model.safetensors), ``official`` (``output_dir/model.pt`` with ``encoder``,
            ``target_encoder``, ``predictor``) or ``hf`` (transformers ``VJEPA2Model`` directory).
        which: the encoder written for ``jepa`` / ``hf``: ``target_encoder`` (the EMA encoder, what V-JEPA 2
            releases and evaluates) or ``encoder`` (the context encoder). ``official`` always writes both.

    Returns:
        The written directory (``jepa``, ``hf``) or file (``official``).
    """
    from jepa.hub import layouts, save_hf, save_pretrained

    if to not in ("jepa", "official", "hf"):
        raise ValueError(f"export: to must be 'jepa', 'official' or 'hf', got {to!r}")
    if which not in ("target_encoder", "encoder"):
        raise ValueError(f"export: which must be 'target_encoder' or 'encoder', got {which!r}")
    task, step = _task_and_step(ckpt)
    encoder, predictor = getattr(task, which), task.predictor
    out = Path(output_dir)
    if to == "jepa":
        return save_pretrained(out, encoder, predictor)
    if to == "hf":
        return save_hf(out, encoder, predictor)
    out.mkdir(parents=True, exist_ok=True)
    prefix = "module.backbone."
    official: dict[str, Any] = {
        "encoder": layouts.add_prefix(_cpu(task.encoder), prefix),
        "target_encoder": layouts.add_prefix(_cpu(task.target_encoder), prefix),
        "predictor": layouts.add_prefix(_cpu(task.predictor), prefix),
        "epoch": step // max(1, int(task.hparams.get("ipe", 300))),
        "jepa": layouts.jepa_config(task.encoder.config, task.predictor.config),
    }
    path = out / "model.pt"
    torch.save(official, path)
    return path
