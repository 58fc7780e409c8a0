"""The small base every task shares: encoder construction and freezing, model/metric hooks, throughput logging."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

EncoderSpec = str | nn.Module
"""An encoder given as a registry name (``"vit_large"``, ``"vjepa2_vitl_256"``), a checkpoint source handled by
:func:`jepa.load_pretrained` (Hub repo id, directory, ``.pt``/``.safetensors`` file, URL) or a module."""


def build_encoder(
    encoder: EncoderSpec,
    pretrained: bool | str = False,
    overrides: Mapping[str, Any] | None = None,
    checkpoint_key: str | None = None,
) -> nn.Module:
    """Build an encoder from a registry name, a checkpoint source or a ready module.

    Args:
        encoder: registry name, checkpoint source, or an ``nn.Module`` returned unchanged.
        pretrained: ``False`` for random init, ``True`` for the weights registered with the name, or a source.
        overrides: ``EncoderConfig`` fields overriding the preset (e.g. ``{"img_size": 384}``).
        checkpoint_key: top-level key for official multi-model files (default ``target_encoder``).

    Returns:
        The encoder module.
    """
    if isinstance(encoder, nn.Module):
        if pretrained or overrides:
            raise ValueError("build_encoder: `pretrained`/`overrides` apply to names only, not to a given module")
        return encoder
    import jepa
    from jepa.registry import ENCODERS

    if encoder in ENCODERS:
        return jepa.create_encoder(
            encoder, pretrained=pretrained, checkpoint_key=checkpoint_key, **dict(overrides or {})
        )
    if pretrained is not False or overrides:
        raise ValueError(
            f"encoder {encoder!r} is not a registered name, so it is read as a checkpoint source; "
            "`pretrained` and `overrides` only apply to registered names"
        )
    return jepa.load_pretrained(encoder, checkpoint_key=checkpoint_key).encoder


def freeze(module: nn.Module) -> nn.Module:
    """Put ``module`` in eval mode and stop all its gradients (in place); returns it for chaining."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


class BaseTask(pl.LightningModule):
    """Common base of the `jepa` LightningModules.

    Subclasses build their parts in :meth:`configure_models` (called from ``__init__``), their losses in
    :meth:`configure_losses` and their metrics in :meth:`configure_metrics`. Frozen modules registered through
    :meth:`register_frozen` stay in eval mode through ``train()`` calls and are left out of checkpoints unless
    ``save_frozen`` is True.
    """

    def __init__(self, save_frozen: bool = False) -> None:
        super().__init__()
        self.save_frozen = save_frozen
        self._frozen_names: list[str] = []
        self._throughput_marks: dict[str, float] = {}
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # ---------------------------------------------------------------- hooks for subclasses
    def configure_models(self) -> None:
        """Create the modules of the task."""

    def configure_losses(self) -> None:
        """Create loss modules (optional)."""

    def configure_metrics(self) -> None:
        """Create torchmetrics (optional)."""

    # ---------------------------------------------------------------- frozen parts
    def register_frozen(self, name: str, module: nn.Module) -> nn.Module:
        """Attach ``module`` as attribute ``name``, frozen (no grad, eval mode, excluded from saving by default)."""
        setattr(self, name, freeze(module))
        self._frozen_names.append(name)
        return module

    def train(self, mode: bool = True) -> BaseTask:
        super().train(mode)
        for name in self._frozen_names:
            getattr(self, name).eval()
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Module state without the frozen parts (unless ``save_frozen``): they are rebuilt from their source."""
        state = super().state_dict(*args, **kwargs)
        if self.save_frozen or not self._frozen_names:
            return state
        prefix = kwargs.get("prefix", "")
        dropped = tuple(f"{prefix}{name}." for name in self._frozen_names)
        return {key: value for key, value in state.items() if not key.startswith(dropped)}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load, tolerating the absence of frozen parts that :meth:`state_dict` leaves out."""
        if self._frozen_names and not self.save_frozen:
            frozen_prefixes = tuple(f"{name}." for name in self._frozen_names)
            expected = {key for key in super().state_dict() if not key.startswith(frozen_prefixes)}
            missing = sorted(expected - set(state_dict))
            unexpected = sorted(set(state_dict) - set(super().state_dict()))
            if strict and (missing or unexpected):
                raise RuntimeError(
                    f"{type(self).__name__}.load_state_dict: missing keys {missing[:10]}, unexpected keys "
                    f"{unexpected[:10]} (frozen parts {self._frozen_names} are not expected in checkpoints)"
                )
            return super().load_state_dict(state_dict, strict=False, assign=assign)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ---------------------------------------------------------------- throughput
    def log_throughput(self, name: str, count: int | float, **log_kwargs: Any) -> None:
        """Log ``count`` items per second since the previous call (e.g. clips/s, tokens/s)."""
        now = time.perf_counter()
        previous = self._throughput_marks.get(name)
        if previous is not None and now > previous:
            self.log(name, float(count) / (now - previous), **log_kwargs)
        self._throughput_marks[name] = now

    @staticmethod
    def trainable_parameters(module: nn.Module) -> list[torch.nn.Parameter]:
        return [parameter for parameter in module.parameters() if parameter.requires_grad]
