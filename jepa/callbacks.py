"""Lightning callbacks shared by the tasks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from safetensors.torch import save_file


class PredictionWriter(BasePredictionWriter):
    """Write the outputs of ``predict_step`` to ``output_dir`` at the end of ``jepa predict``.

    Each ``predict_step`` returns a dict (or ``None`` for a batch with nothing to report). Tensor values (first
    axis = batch) are concatenated over batches and saved to ``predictions.safetensors``; list values (paths,
    labels, scores) are gathered into rows of ``predictions.jsonl`` (one JSON object per sample, the row index
    matching the tensors' first axis).
    Under DDP each rank writes its own files with a ``.rank{r}`` suffix.

    Args:
        output_dir: directory created if needed.
        name: file stem (``predictions``).
    """

    def __init__(self, output_dir: str = "predictions", name: str = "predictions") -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = Path(output_dir)
        self.name = name

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any] | None,
    ) -> None:
        # With several predict dataloaders Lightning nests one list per dataloader.
        batches = [item for group in predictions for item in group] if _is_nested(predictions) else list(predictions)
        tensors: dict[str, list[torch.Tensor]] = {}
        columns: dict[str, list[Any]] = {}
        for output in batches:
            if output is None:  # a batch whose samples were all skipped
                continue
            if not isinstance(output, dict):
                raise TypeError(f"PredictionWriter: predict_step must return a dict, got {type(output).__name__}")
            for key, value in output.items():
                if isinstance(value, torch.Tensor):
                    tensors.setdefault(key, []).append(value.detach().cpu())
                else:
                    columns.setdefault(key, []).extend(value)
        suffix = f".rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if tensors:
            stacked = {key: torch.cat(values).contiguous() for key, values in tensors.items()}
            save_file(stacked, str(self.output_dir / f"{self.name}{suffix}.safetensors"))
        if columns:
            lengths = {key: len(values) for key, values in columns.items()}
            if len(set(lengths.values())) != 1:
                raise ValueError(f"PredictionWriter: list outputs have different lengths {lengths}")
            rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
            with open(self.output_dir / f"{self.name}{suffix}.jsonl", "w") as handle:
                for row in rows:
                    handle.write(json.dumps(row, default=_json_default) + "\n")


def _is_nested(predictions: Sequence[Any]) -> bool:
    return bool(predictions) and isinstance(predictions[0], list)


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"PredictionWriter: cannot write {type(value).__name__} to JSON")
