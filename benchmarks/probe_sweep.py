"""Per-step time of an N-head probe sweep against a single head, both with one shared frozen-encoder forward.

    PYTHONPATH=. python benchmarks/probe_sweep.py                       # CPU-sized defaults
    PYTHONPATH=. python benchmarks/probe_sweep.py --device cuda --preset vit_large --img 256 --frames 16 \
        --segments 2 --batch 4 --heads 20 --dtype bfloat16              # the SSv2 ViT-L shape

A step is what ``ProbeTask.training_step`` does: encode ``segments`` clips per video once (no grad), concatenate the
segments' tokens, then forward + backward + AdamW for every head. Printed: ms per step for 1 head, for N heads, their
ratio, and the time of N separate single-head runs (N encoder forwards) for comparison.
"""

from __future__ import annotations

import argparse
import time

import torch

from jepa.encoders.presets import preset_config
from jepa.encoders.vit import VideoViT
from jepa.probes import AttentiveClassifier, ProbeSweep, sweep_grid


def _step(encoder, sweep, optimizer, clips, labels, dtype) -> None:
    with torch.autocast(clips.device.type, dtype=dtype, enabled=dtype != torch.float32):
        with torch.no_grad():
            tokens = encoder(clips.flatten(0, 1))  # (B·S, N, D)
        tokens = tokens.unflatten(0, clips.shape[:2]).flatten(1, 2)  # (B, S·N, D)
        loss = sum(torch.nn.functional.cross_entropy(logits.float(), labels) for logits in sweep(tokens))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def time_sweep(args: argparse.Namespace, heads: int) -> float:
    """Median seconds per step of a ``heads``-head sweep."""
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    overrides = {"img_size": args.img, "num_frames": args.frames}
    if args.width:
        overrides.update(embed_dim=args.width, num_heads=max(1, args.width // 64), depth=args.depth)
    encoder = VideoViT(preset_config(args.preset, **overrides)).to(device).eval().requires_grad_(False)
    dim = encoder.embed_dim
    hparams = sweep_grid([1e-3] * heads, [0.01])
    sweep = ProbeSweep.build(
        lambda: AttentiveClassifier(dim, args.classes, num_heads=args.probe_heads, depth=args.probe_depth,
                                    use_activation_checkpointing=args.checkpointing),
        hparams,
    ).to(device)  # fmt: skip
    optimizer = torch.optim.AdamW(sweep.param_groups())
    clips = torch.randn(args.batch, args.segments, 3, args.frames, args.img, args.img, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    times = []
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        _step(encoder, sweep, optimizer, clips, labels, dtype)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default="vit_large")
    parser.add_argument("--width", type=int, default=None, help="shrink the encoder: width (heads = width/64)")
    parser.add_argument("--depth", type=int, default=24, help="encoder depth when --width is given")
    parser.add_argument("--img", type=int, default=64)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--segments", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--classes", type=int, default=174)
    parser.add_argument("--heads", type=int, default=20)
    parser.add_argument("--probe-heads", type=int, default=16)
    parser.add_argument("--probe-depth", type=int, default=4)
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing in the probes")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    single = time_sweep(args, 1)
    many = time_sweep(args, args.heads)
    print(f"device={args.device} preset={args.preset} width={args.width or 'preset'} img={args.img} "
          f"frames={args.frames} segments={args.segments} batch={args.batch} probe_depth={args.probe_depth} "
          f"dtype={args.dtype}")  # fmt: skip
    print(f"1 head:    {single * 1e3:9.1f} ms/step")
    print(f"{args.heads} heads:  {many * 1e3:9.1f} ms/step   ratio {many / single:.2f}x (goal < 1.3x)")
    print(
        f"{args.heads} separate single-head runs (one encoder forward each): {args.heads * single * 1e3:9.1f} ms/step"
    )


if __name__ == "__main__":
    main()
