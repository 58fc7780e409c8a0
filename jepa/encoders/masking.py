"""Keep-index masks: gathering kept tokens, validating index tensors, decoding token ids to (t, h, w).

Token id convention (spec: encoder.md §2): ``n = t·Hp·Wp + h·Wp + w``. Masks are int64 index tensors ``(B, K)`` of
the tokens to KEEP, never booleans.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def ids_to_thw(ids: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode token ids into integer (t, h, w) positions.

    Args:
        ids: integer tensor of token ids, any shape.
        grid: ``(Hp, Wp)``, tokens per column / row of one frame.

    Returns:
        ``(t, h, w)``, three integer tensors shaped like ``ids``.
    """
    height, width = grid
    tokens_per_frame = height * width
    t = ids // tokens_per_frame
    h = (ids - t * tokens_per_frame) // width
    w = ids - t * tokens_per_frame - h * width
    return t, h, w


def as_mask_list(masks: torch.Tensor | Sequence[torch.Tensor] | None, name: str = "masks") -> list[torch.Tensor] | None:
    """Normalise a single ``(B, K)`` tensor or a sequence of them into a list (``None`` stays ``None``)."""
    if masks is None:
        return None
    if isinstance(masks, torch.Tensor):
        return [masks]
    if isinstance(masks, (list, tuple)) and all(isinstance(m, torch.Tensor) for m in masks):
        if not masks:
            raise ValueError(f"{name}: got an empty list; pass None for no masking")
        return list(masks)
    raise TypeError(f"{name}: expected a (B, K) int64 tensor or a list of them, got {type(masks).__name__}")


def check_masks(masks: Sequence[torch.Tensor], batch: int, num_tokens: int, name: str = "masks") -> None:
    """Raise a clear error unless every mask is an int64 ``(batch, K)`` tensor with ids in ``[0, num_tokens)``.

    All masks of one list must have the same ``K`` (they are concatenated along the batch axis).
    """
    for i, mask in enumerate(masks):
        where = f"{name}[{i}]"
        if mask.dtype != torch.int64:
            raise TypeError(
                f"{where}: expected an int64 tensor of token ids to keep (B, K), got dtype {mask.dtype}; "
                "boolean masks are not accepted, convert with mask.nonzero() per sample"
            )
        if mask.ndim != 2 or mask.shape[0] != batch:
            raise ValueError(f"{where}: expected shape (B={batch}, K), got {tuple(mask.shape)}")
        # The value check reads the ids on the host; skipped while compiling so torch.compile keeps one graph.
        compiling = torch.compiler.is_compiling()
        if mask.numel() and not compiling and (int(mask.min()) < 0 or int(mask.max()) >= num_tokens):
            raise ValueError(
                f"{where}: token ids must lie in [0, {num_tokens}) for this input, "
                f"got min {int(mask.min())} and max {int(mask.max())}"
            )
    # Compared pairwise, not through a set of ints: a set would specialise every K under torch.compile (one graph
    # per mask length) while `!=` keeps K symbolic.
    if any(mask.shape[1] != masks[0].shape[1] for mask in masks[1:]):
        lengths = sorted({int(mask.shape[1]) for mask in masks})
        raise ValueError(f"{name}: all masks must keep the same number of tokens K, got {lengths}")


def apply_masks(
    x: torch.Tensor, masks: Sequence[torch.Tensor], concat: bool = True
) -> torch.Tensor | list[torch.Tensor]:
    """Gather kept tokens for each mask (official ``apply_masks``).

    Args:
        x: tokens ``(B, N, D)``.
        masks: list of ``(B, K)`` int64 keep-index tensors.
        concat: concatenate the results along the batch axis (official behaviour).

    Returns:
        ``(len(masks)·B, K, D)`` if ``concat`` else a list of ``(B, K, D)`` tensors.
    """
    gathered = []
    for mask in masks:
        index = mask.to(x.device).unsqueeze(-1).expand(-1, -1, x.shape[-1])  # (B, K, D)
        gathered.append(torch.gather(x, dim=1, index=index))
    return torch.cat(gathered, dim=0) if concat else gathered
