"""Seconds per pretraining step and tokens/s of `PretrainTask`, eager vs `torch.compile`, in one run.

One step = the official V-JEPA 2 step of `PretrainTask.compute_loss` (target encoder on the full clip, one
context-encoder + predictor pass per mask config, L1 loss) + backward + AdamW step + EMA update, on a synthetic
batch with the two V-JEPA 2 mask configs (`MaskCollator`). tokens/s counts clip tokens (B · T/2 · (H/16)²), as
`train/tokens_per_s` in the task logs.

    PYTHONPATH=. python benchmarks/pretrain_step.py --preset vit_tiny --img-size 64 --frames 8 --batch 8
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from jepa.data.masks import MaskCollator
from jepa.optim import ema_update
from jepa.tasks.pretrain import PretrainTask


def make_task(preset: str, img_size: int, frames: int, depth: int | None, compile_models: bool) -> PretrainTask:
    overrides = {"img_size": img_size, "num_frames": frames}
    if depth is not None:
        overrides["depth"] = depth
    torch.manual_seed(0)
    task = PretrainTask(
        encoder=preset,
        encoder_overrides=overrides,
        predictor_overrides={"embed_dim": 96, "depth": 2, "num_heads": 4},
        compile=compile_models,  # PretrainTask(compile=True): torch.compile(dynamic=True) in place
    )
    task.compile_models()  # what configure_model does under a Trainer
    return task


def time_steps(task: PretrainTask, batches: list, warmup: int) -> list[float]:
    """Wall seconds of each step after `warmup` untimed steps."""
    optimizer = torch.optim.AdamW([p for p in task.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        loss, _ = task.compute_loss(batch, rank=False)  # target_erank is only computed on logging steps
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema_update(task.target_encoder, task.encoder, 0.99925)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="vit_tiny")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--depth", type=int, default=None, help="override the preset depth")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation happens here)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--modes", default="eager,compile")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    collator = MaskCollator(dataset_fpcs=[args.frames], crop_size=args.img_size)
    torch.manual_seed(1)
    batches = [
        collator(
            [{"clips": [torch.randn(3, args.frames, args.img_size, args.img_size)], "fpc": args.frames}] * args.batch
        )
        for _ in range(args.warmup + args.steps)
    ]
    tokens = args.batch * (args.frames // 2) * (args.img_size // 16) ** 2
    print(f"preset {args.preset} {args.frames}x{args.img_size}^2, batch {args.batch}, {tokens} clip tokens/step, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"| mode | s/step (median of {args.steps}) | tokens/s | speed-up |")
    print("|---|---|---|---|")
    baseline = None
    for mode in args.modes.split(","):
        try:
            task = make_task(args.preset, args.img_size, args.frames, args.depth, compile_models=mode == "compile")
            seconds = statistics.median(time_steps(task, batches, args.warmup))
        except Exception as error:  # compile may be unavailable (no C++ compiler): report, do not hide
            print(f"| {mode} | failed: {type(error).__name__}: {str(error).splitlines()[0][:120]} | | |")
            continue
        baseline = baseline or seconds
        print(f"| {mode} | {seconds:.3f} | {tokens / seconds:,.0f} | {baseline / seconds:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
