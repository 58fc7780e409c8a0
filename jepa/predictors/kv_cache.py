"""Key/value cache for incremental (frame-by-frame) rollouts of the block-causal AC predictor.

Because the AC predictor's attention mask is block-causal over frames (spec: ac_planning.md §1.2), the keys and
values of frames already processed never change when later frames are appended. Caching them per block makes a
rollout of one more frame cost only that frame's tokens, and the result is exactly the uncached forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class KVCache:
    """Post-RoPE keys and values of every processed token, one ``(k, v)`` pair per block.

    Attributes:
        keys / values: per block, ``(B, heads, N_cached, head_dim)`` tensors (empty lists before the first step).
        num_frames: frames already processed; the next frame gets temporal position ``num_frames``.
    """

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    num_frames: int = 0

    def __len__(self) -> int:
        return self.num_frames

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append new ``k, v`` ``(B, heads, n, hd)`` of block ``layer``; return all of them ``(B, heads, N, hd)``."""
        if layer == len(self.keys):  # first step: nothing cached for this block yet
            self.keys.append(k.contiguous())  # own storage: views would keep the whole fused qkv buffer alive
            self.values.append(v.contiguous())
        else:
            self.keys[layer], self.values[layer] = self._concat(layer, k, v, "extend")  # (B, heads, N + n, hd)
        return self.keys[layer], self.values[layer]

    def peek(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`extend` but without storing: cached + new ``k, v`` ``(B, heads, N, hd)`` for one last step
        whose keys/values are never needed again (saves keeping them alive; the cache is unchanged)."""
        if layer >= len(self.keys):
            return k, v
        return self._concat(layer, k, v, "peek")

    def _concat(self, layer: int, k: torch.Tensor, v: torch.Tensor, caller: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached keys/values of ``layer`` (a batch-1 cache broadcast to ``k``'s batch) followed by ``k, v``."""
        cached_k, cached_v = self.keys[layer], self.values[layer]
        if cached_k.shape[0] != k.shape[0]:
            if cached_k.shape[0] != 1:
                raise ValueError(
                    f"KVCache.{caller}: cache batch {cached_k.shape[0]} cannot be broadcast to new tokens' batch "
                    f"{k.shape[0]} (only a batch-1 cache broadcasts); call expand() first"
                )
            cached_k = cached_k.expand(k.shape[0], -1, -1, -1)
            cached_v = cached_v.expand(k.shape[0], -1, -1, -1)
        return torch.cat([cached_k, k], dim=2), torch.cat([cached_v, v], dim=2)

    def expand(self, batch: int) -> KVCache:
        """A new cache whose batch-1 entries are broadcast (views, no copy) to ``batch`` samples."""
        for k in self.keys:
            if k.shape[0] not in (1, batch):
                raise ValueError(f"KVCache.expand: cannot expand a cache of batch {k.shape[0]} to {batch}")
        return KVCache(
            keys=[k.expand(batch, -1, -1, -1) for k in self.keys],
            values=[v.expand(batch, -1, -1, -1) for v in self.values],
            num_frames=self.num_frames,
        )

    def clone(self) -> KVCache:
        """A shallow copy (tensors shared; :meth:`extend` never writes into them in place)."""
        return KVCache(keys=list(self.keys), values=list(self.values), num_frames=self.num_frames)
