"""Multi-block 3-D masks for V-JEPA mask denoising, and the collator that attaches them to batches.

Spec: pretraining.md §2 (official ``src/masks/multiseq_multiblock3d.py``).

A :class:`MultiBlockMaskGenerator` turns a batch size into context (``masks_enc``) and target (``masks_pred``)
keep-index tensors over the token grid ``(d, Hg, Wg)`` = ``(num_frames / tubelet, crop_h / patch, crop_w / patch)``
with token id ``n = t·Hg·Wg + h·Wg + w``:

1. A seed from a per-generator counter (first seed 0) seeds a ``torch.Generator`` that draws u1, u2, u3 → one
   block size ``(t, h, w)`` for the whole batch.
2. Per sample, ``num_blocks`` boxes of that size are placed with the **global** torch RNG; their union is the
   target, the complement the context (an empty context is redrawn).
3. Every context list is cut to the batch's shortest context, every target list to the shortest target, keeping
   the lowest ids (QUIRK, reproduced), and stacked as int64.

Counter and DataLoader workers
------------------------------
The official code keeps the counter in a ``multiprocessing.Value`` shared by all workers: with ``num_workers > 0``
which batch gets which seed then depends on worker timing, so runs are not reproducible. ``seed_mode`` chooses:

- ``"shared"``: the official counter everywhere (bit-exact with the official code in the main process).
- ``"worker"`` (default): in the main process (``num_workers=0``) the same shared counter (seeds 0, 1, 2, … —
  identical to official); inside a DataLoader worker the k-th call of worker ``w`` out of ``N`` uses index
  ``c + 1 + k·N + w`` — the batch index in the loader's round-robin order, shifted by the shared counter ``c``
  that only :meth:`MultiBlockMaskGenerator.set_counter` moves in this mode — mixed with the iterator's base seed (drawn
  from the main-process RNG by the DataLoader, so fixed by ``seed_everything``). Reproducible for a fixed seed and
  worker count; fresh seeds for every new iterator (epoch).

Box positions always use the global torch RNG, which DataLoader seeds per worker (``base_seed + worker_id``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.context import get_spawning_popen
from typing import Any, Literal

import torch
from torch.utils.data import default_collate, get_worker_info

SeedMode = Literal["worker", "shared"]
MaskPair = tuple[torch.Tensor, torch.Tensor]
CollatedGroup = tuple[Any, list[torch.Tensor], list[torch.Tensor]]


@dataclass
class MaskConfig:
    """One multi-block mask configuration (one entry of the official ``mask:`` list).

    Attributes:
        num_blocks: boxes per sample whose union is the target (official ``num_blocks``/``npred``).
        spatial_scale: ``(min, max)`` fraction of the ``Hg·Wg`` spatial grid covered by one box.
        temporal_scale: ``(min, max)`` fraction of the ``d`` temporal slots covered by one box.
        aspect_ratio: ``(min, max)`` box aspect ratio ``h / w``.
        max_temporal_keep: context may only use the first ``max(1, int(d·ratio))`` slots (1.0 = off).
        max_keep: cap on the context length after trimming (``None`` = no cap).
        full_complement: target = every token not in the (trimmed) context.
        pred_full_complement: context = every token not in the (trimmed) target.
        inv_block: swap the outputs (predict the context from the block).
    """

    num_blocks: int = 8
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    max_temporal_keep: float = 1.0
    max_keep: int | None = None
    full_complement: bool = False
    pred_full_complement: bool = False
    inv_block: bool = False

    def __post_init__(self) -> None:
        self.spatial_scale = _pair(self.spatial_scale, "spatial_scale")
        self.temporal_scale = _pair(self.temporal_scale, "temporal_scale")
        self.aspect_ratio = _pair(self.aspect_ratio, "aspect_ratio")
        if self.num_blocks < 1:
            raise ValueError(f"MaskConfig: num_blocks must be >= 1, got {self.num_blocks}")
        if not 0.0 < self.max_temporal_keep <= 1.0:
            raise ValueError(f"MaskConfig: max_temporal_keep must be in (0, 1], got {self.max_temporal_keep}")


def _pair(value: Sequence[float], key: str) -> tuple[float, float]:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"MaskConfig: {key} must be a (min, max) pair with min <= max, got {value!r}")
    return (float(value[0]), float(value[1]))


def vjepa2_mask_configs() -> list[MaskConfig]:
    """The two mask configurations of every V-JEPA 2 pretrain and cooldown config (spec §2.1).

    Returns:
        ``[short_range, long_range]``: 8 blocks of spatial scale 0.15 and 2 blocks of 0.70, full duration,
        aspect ratio in [0.75, 1.5].
    """
    return [
        MaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15), temporal_scale=(1.0, 1.0), aspect_ratio=(0.75, 1.5)),
        MaskConfig(num_blocks=2, spatial_scale=(0.70, 0.70), temporal_scale=(1.0, 1.0), aspect_ratio=(0.75, 1.5)),
    ]


class SharedCounter:
    """An integer counter shared by the processes forked/spawned from its owner (official ``Value('i', -1)``).

    Pickling outside process spawning (``deepcopy``, saving hyper-parameters) copies the current value into a new,
    independent counter instead of failing as a raw ``multiprocessing.Value`` does.
    """

    def __init__(self, start: int = -1) -> None:
        self._value = multiprocessing.Value("q", start)

    def increment(self) -> int:
        """Add one and return the new value (atomic across processes)."""
        with self._value.get_lock():
            self._value.value += 1
            return int(self._value.value)

    @property
    def value(self) -> int:
        return int(self._value.value)

    def set(self, value: int) -> None:
        with self._value.get_lock():
            self._value.value = value

    def __getstate__(self) -> dict[str, Any]:
        if get_spawning_popen() is not None:  # handing the shared object to a child process
            return {"shared": self._value}
        return {"value": self.value}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "shared" in state:
            self._value = state["shared"]
        else:
            self._value = multiprocessing.Value("q", state["value"])


def _mix_seed(base: int, index: int) -> int:
    """Deterministic 63-bit seed from a DataLoader iterator's base seed and a batch index (splitmix64 finaliser)."""
    z = (base * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


class MultiBlockMaskGenerator:
    """Official multi-block 3-D mask generator (``_MaskGenerator``) for one (clip length, mask config) pair.

    Args:
        config: the mask configuration.
        num_frames: frames per clip (fpc) of the batches it masks.
        crop_size: input crop ``H`` (square) or ``(H, W)`` in pixels.
        patch_size: spatial patch side (int or ``(ph, pw)``).
        tubelet_size: frames per token.
        seed_mode: how block-size seeds are drawn inside DataLoader workers (see the module docstring).

    Call ``generator(batch_size)`` → ``(masks_enc (B, Kc), masks_pred (B, Kt))`` int64 token ids, each row
    ascending (unless a complement option rebuilds it, also ascending).
    """

    def __init__(
        self,
        config: MaskConfig,
        num_frames: int,
        crop_size: int | tuple[int, int] = 256,
        patch_size: int | tuple[int, int] = 16,
        tubelet_size: int = 2,
        seed_mode: SeedMode = "worker",
    ) -> None:
        crop = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        if num_frames % tubelet_size:
            raise ValueError(f"MultiBlockMaskGenerator: num_frames={num_frames} is not a multiple of {tubelet_size=}")
        if crop[0] % patch[0] or crop[1] % patch[1]:
            raise ValueError(f"MultiBlockMaskGenerator: crop_size={crop} is not a multiple of patch_size={patch}")
        if seed_mode not in ("worker", "shared"):
            raise ValueError(f"MultiBlockMaskGenerator: seed_mode must be 'worker' or 'shared', got {seed_mode!r}")
        self.config = config
        self.duration = num_frames // tubelet_size  # d
        self.height, self.width = crop[0] // patch[0], crop[1] // patch[1]  # Hg, Wg
        self.num_tokens = self.duration * self.height * self.width
        self.max_context_duration = max(1, int(self.duration * config.max_temporal_keep))
        self.seed_mode = seed_mode
        self._counter = SharedCounter(-1)
        self._worker_key: tuple[int, int] | None = None  # (pid, worker base seed) of the worker-local count
        self._worker_calls = 0

    # ------------------------------------------------------------------ seeds
    @property
    def counter(self) -> int:
        """Last seed handed out by the shared counter (−1 before the first call)."""
        return self._counter.value

    def set_counter(self, value: int) -> None:
        """Set the shared counter (e.g. fast-forward on resume: ``start_epoch·ipe − 1``)."""
        self._counter.set(value)

    def step(self) -> int:
        """Return the seed for the next batch (advances the counter)."""
        info = get_worker_info()
        if info is None or self.seed_mode == "shared":
            return self._counter.increment()
        key = (os.getpid(), info.seed - info.id)
        if key != self._worker_key:  # a new worker process or a new iterator: restart the local count
            self._worker_key, self._worker_calls = key, 0
        # batch index in the loader's round-robin order, after any fast-forward of the (untouched) shared counter
        index = self._counter.value + 1 + self._worker_calls * info.num_workers + info.id
        self._worker_calls += 1
        return _mix_seed(info.seed - info.id, index)

    # ------------------------------------------------------------------ sampling
    def block_size(self, seed: int) -> tuple[int, int, int]:
        """Block ``(t, h, w)`` in tokens drawn from ``torch.Generator().manual_seed(seed)`` (u1, u2, u3 in order)."""
        g = torch.Generator()
        g.manual_seed(seed)
        cfg = self.config
        u1 = torch.rand(1, generator=g).item()
        t = max(1, int(self.duration * (cfg.temporal_scale[0] + u1 * (cfg.temporal_scale[1] - cfg.temporal_scale[0]))))
        u2 = torch.rand(1, generator=g).item()
        scale = cfg.spatial_scale[0] + u2 * (cfg.spatial_scale[1] - cfg.spatial_scale[0])
        n = int(self.height * self.width * scale)
        u3 = torch.rand(1, generator=g).item()
        ar = cfg.aspect_ratio[0] + u3 * (cfg.aspect_ratio[1] - cfg.aspect_ratio[0])
        h = min(int(round(math.sqrt(n * ar))), self.height)
        w = min(int(round(math.sqrt(n / ar))), self.width)
        return t, h, w

    def _sample_keep(self, size: tuple[int, int, int]) -> torch.Tensor:
        """One sample's keep map ``(d·Hg·Wg,)`` int32: 1 = context, 0 = target (union of the boxes)."""
        t, h, w = size
        keep = torch.ones((self.duration, self.height, self.width), dtype=torch.int32)
        for _ in range(self.config.num_blocks):
            top = int(torch.randint(0, self.height - h + 1, (1,)))  # global RNG, official order top, left, start
            left = int(torch.randint(0, self.width - w + 1, (1,)))
            start = int(torch.randint(0, self.duration - t + 1, (1,)))
            keep[start : start + t, top : top + h, left : left + w] = 0
        if self.max_context_duration < self.duration:
            keep[self.max_context_duration :] = 0
        return keep.flatten()

    def _complement(self, ids: torch.Tensor) -> torch.Tensor:
        present = torch.zeros(self.num_tokens, dtype=torch.bool)
        present[ids] = True
        return torch.nonzero(~present).flatten()

    def __call__(self, batch_size: int) -> MaskPair:
        """Masks for a batch.

        Args:
            batch_size: number of samples B.

        Returns:
            ``(masks_enc, masks_pred)``: int64 ``(B, Kc)`` context ids and ``(B, Kt)`` target ids.
        """
        if batch_size < 1:
            raise ValueError(f"MultiBlockMaskGenerator: batch_size must be >= 1, got {batch_size}")
        size = self.block_size(self.step())
        enc: list[torch.Tensor] = []
        pred: list[torch.Tensor] = []
        for _ in range(batch_size):
            while True:  # redraw samples whose context is empty
                keep = self._sample_keep(size)
                ctx = torch.nonzero(keep).flatten()  # ascending
                if len(ctx):
                    break
            enc.append(ctx)
            pred.append(torch.nonzero(keep == 0).flatten())
        k_enc = min(len(m) for m in enc)
        if self.config.max_keep is not None:
            k_enc = min(k_enc, self.config.max_keep)
        k_pred = min(len(m) for m in pred)
        if k_pred == 0:
            raise ValueError(
                f"MultiBlockMaskGenerator: block size (t, h, w)={size} gives an empty target on the "
                f"{self.duration}x{self.height}x{self.width} token grid with {self.config}; use a larger crop or scale"
            )
        # QUIRK (official): equal lengths by keeping the lowest ids; dropped ids are neither context nor target.
        enc = [m[:k_enc] for m in enc]
        pred = [m[:k_pred] for m in pred]
        if self.config.full_complement:
            pred = [self._complement(m) for m in enc]
        elif self.config.pred_full_complement:
            enc = [self._complement(m) for m in pred]
        masks_enc = torch.stack(enc).long()  # (B, Kc)
        masks_pred = torch.stack(pred).long()  # (B, Kt)
        if self.config.inv_block:
            return masks_pred, masks_enc
        return masks_enc, masks_pred


def sample_fpc(sample: Any) -> int:
    """Frames per clip of one dataset sample: ``sample["fpc"]`` if present, else the frames of its last clip."""
    if isinstance(sample, Mapping):
        if "fpc" in sample:
            return int(sample["fpc"])
        if "clips" in sample:
            return int(sample["clips"][-1].shape[1])  # clip (3, T, H, W)
    raise KeyError(
        f"MaskCollator: cannot find the clip length of a sample of type {type(sample).__name__}; expected a dict with "
        "'fpc' or 'clips' (list of (3, T, H, W) tensors)"
    )


class MaskCollator:
    """Groups samples by clip length, collates each group and attaches one mask pair per mask config.

    Args:
        mask_configs: mask configurations (default: the two V-JEPA 2 ones).
        dataset_fpcs: frames per clip of every dataset (duplicates allowed; groups follow first occurrence).
        crop_size, patch_size, tubelet_size: token grid of the model.
        seed_mode: see :class:`MultiBlockMaskGenerator`.
        collate: collates one fpc group (list of samples → batch); default ``torch.utils.data.default_collate``
            (official). ``jepa.data.datamodules.collate_samples`` gives the data modules' batch format.

    Call with a list of samples (dicts with ``"clips"`` and optionally ``"fpc"``) → a list over the non-empty fpc
    groups, in ``dataset_fpcs`` order, of ``(collated_group, [masks_enc per config], [masks_pred per config])``.
    """

    def __init__(
        self,
        mask_configs: Sequence[MaskConfig] | None = None,
        dataset_fpcs: Sequence[int] = (16,),
        crop_size: int | tuple[int, int] = 256,
        patch_size: int | tuple[int, int] = 16,
        tubelet_size: int = 2,
        seed_mode: SeedMode = "worker",
        collate: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        configs = list(mask_configs) if mask_configs is not None else vjepa2_mask_configs()
        if not configs:
            raise ValueError("MaskCollator: mask_configs is empty; expected at least one MaskConfig")
        if not dataset_fpcs:
            raise ValueError("MaskCollator: dataset_fpcs is empty; expected the frames per clip of each dataset")
        self.mask_configs = configs
        self.collate = collate if collate is not None else default_collate
        self.generators: dict[int, list[MultiBlockMaskGenerator]] = {}
        for fpc in dataset_fpcs:
            if int(fpc) in self.generators:
                continue
            self.generators[int(fpc)] = [
                MultiBlockMaskGenerator(c, int(fpc), crop_size, patch_size, tubelet_size, seed_mode) for c in configs
            ]

    def fast_forward(self, steps: int) -> None:
        """Advance every generator's shared counter by ``steps`` calls (resume, spec §10)."""
        for gens in self.generators.values():
            for g in gens:
                g.set_counter(g.counter + steps)

    def __call__(self, samples: Sequence[Any]) -> list[CollatedGroup]:
        groups: dict[int, list[Any]] = {fpc: [] for fpc in self.generators}
        for sample in samples:
            fpc = sample_fpc(sample)
            if fpc not in groups:
                raise KeyError(f"MaskCollator: sample with fpc={fpc}, but masks exist only for {list(groups)}")
            groups[fpc].append(sample)
        out: list[CollatedGroup] = []
        for fpc, group in groups.items():
            if not group:
                continue
            masks = [gen(len(group)) for gen in self.generators[fpc]]
            out.append((self.collate(group), [m[0] for m in masks], [m[1] for m in masks]))
        return out
