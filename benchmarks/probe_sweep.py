"""Per-step time of an N-head probe sweep against a single head, all with one shared frozen-encoder forward.

    PYTHONPATH=. python benchmarks/probe_sweep.py --threads 1                 # small CPU configuration
    PYTHONPATH=. python benchmarks/probe_sweep.py --threads 1 --width 1024 --enc-heads 16 --img 32 \
        --probe-depths 1                                                       # ViT-L width
    PYTHONPATH=. python benchmarks/probe_sweep.py --device cuda --preset vit_large --img 256 --frames 16 \
        --segments 2 --batch 4 --heads 20 --dtype bfloat16 --checkpointing    # the SSv2 ViT-L training shape

A step is what ``ProbeTask.training_step`` does: encode ``segments`` clips per video once (no grad), concatenate the
segments' tokens, then forward + backward + AdamW for every head. For each probe depth one run measures: 1 head,
N heads run one after another (``loop``) and N heads through :mod:`jepa.probes.batched` (``stacked``: shared
normalisation, key/value-free cross-attention batched over heads; ``stacked-all``: self-attention blocks
head-batched too), each split into encoder / heads forward+backward / optimizer step (medians over ``--steps``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from jepa.encoders.presets import preset_config
from jepa.encoders.vit import VideoViT
from jepa.probes import AttentiveClassifier, ProbeSweep, sweep_grid
from jepa.probes.batched import stacked_classifier_forward


@dataclass
class StepTimes:
    """Median seconds of the three parts of one step."""

    encoder: float
    heads: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.encoder + self.heads + self.optimizer


def _sync(device: torch.device) -> float:
    """A clock reading: wall time on CUDA (after a sync); on CPU the process's CPU time, which a shared, loaded
    machine does not inflate (the CPU runs use one thread, so CPU time is the compute time)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def time_sweep(args: argparse.Namespace, encoder: torch.nn.Module, heads: int, depth: int, mode: str) -> StepTimes:
    """Median per-part seconds of a step of a ``heads``-head sweep of ``depth``-block probes.

    ``mode``: ``loop`` (``head(tokens)`` in turn), ``stacked`` (:func:`stacked_classifier_forward`) or
    ``stacked-all`` (also the self-attention blocks head-batched).
    """
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    dim = encoder.embed_dim
    torch.manual_seed(0)
    sweep = ProbeSweep.build(
        lambda: AttentiveClassifier(dim, args.classes, num_heads=args.probe_heads, depth=depth,
                                    use_activation_checkpointing=args.checkpointing),
        sweep_grid([1e-3] * heads, [0.01]),
    ).to(device)  # fmt: skip
    classifiers = list(sweep.heads)
    optimizer = torch.optim.AdamW(sweep.param_groups(), fused=True if args.fused else None)  # ProbeTask(fused_adamw)
    clips = torch.randn(args.batch, args.segments, 3, args.frames, args.img, args.img, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    parts: list[tuple[float, float, float]] = []
    for i in range(args.warmup + args.steps):
        start = _sync(device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            with torch.no_grad():
                tokens = encoder(clips.flatten(0, 1))  # (B·S, N, D)
            tokens = tokens.unflatten(0, clips.shape[:2]).flatten(1, 2)  # (B, S·N, D)
            encoded = _sync(device)
            if mode == "loop":
                logits = [head(tokens) for head in classifiers]  # H × (B, C)
            else:
                logits = stacked_classifier_forward(classifiers, tokens, stack_self_blocks=mode == "stacked-all")
            loss = sum(torch.nn.functional.cross_entropy(o.float(), labels) for o in logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        backward = _sync(device)
        optimizer.step()
        end = _sync(device)
        if i >= args.warmup:
            parts.append((encoded - start, backward - encoded, end - backward))
    del sweep, optimizer
    return StepTimes(*(sorted(p[k] for p in parts)[len(parts) // 2] for k in range(3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default="vit_large")
    parser.add_argument("--width", type=int, default=128, help="encoder width (0: the preset's)")
    parser.add_argument("--enc-heads", type=int, default=None, help="encoder heads when --width is given (width/64)")
    parser.add_argument("--depth", type=int, default=24, help="encoder depth when --width is given")
    parser.add_argument("--img", type=int, default=64)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--segments", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--classes", type=int, default=174)
    parser.add_argument("--heads", type=int, default=20)
    parser.add_argument("--probe-heads", type=int, default=16)
    parser.add_argument("--probe-depths", type=int, nargs="+", default=[4, 1])
    parser.add_argument("--modes", nargs="+", default=["loop", "stacked"], choices=["loop", "stacked", "stacked-all"])
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing in the probes")
    parser.add_argument("--fused", action="store_true", help="fused AdamW (ProbeTask fused_adamw: true)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {"img_size": args.img, "num_frames": args.frames}
    if args.width:
        overrides.update(embed_dim=args.width, num_heads=args.enc_heads or max(1, args.width // 64), depth=args.depth)
    torch.manual_seed(0)
    encoder = VideoViT(preset_config(args.preset, **overrides)).to(args.device).eval().requires_grad_(False)
    tokens = args.segments * (args.frames // encoder.config.tubelet_size) * (args.img // encoder.config.patch_size) ** 2
    print(f"device={args.device} threads={torch.get_num_threads()} encoder={args.preset} width={encoder.embed_dim} "
          f"depth={len(encoder.blocks)} img={args.img} frames={args.frames} segments={args.segments} "
          f"batch={args.batch} head_tokens={tokens} probe_heads={args.probe_heads} classes={args.classes} "
          f"checkpointing={args.checkpointing} fused_adamw={args.fused} dtype={args.dtype} "
          f"steps={args.steps} (median)")  # fmt: skip
    print(
        "| probe depth | heads | execution | encoder ms | heads fwd+bwd ms | optimizer ms | step ms | ratio to 1 head |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for depth in args.probe_depths:
        single = time_sweep(args, encoder, 1, depth, "loop")
        rows = [(1, "loop", single)]
        rows += [(args.heads, mode, time_sweep(args, encoder, args.heads, depth, mode)) for mode in args.modes]
        for heads, mode, t in rows:
            cells = [t.encoder * 1e3, t.heads * 1e3, t.optimizer * 1e3, t.total * 1e3]
            row = " | ".join(f"{c:.0f}" for c in cells)
            print(f"| {depth} | {heads} | {mode} | {row} | {t.total / single.total:.2f} |", flush=True)


if __name__ == "__main__":
    main()
