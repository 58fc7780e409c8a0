"""Seconds per pretraining step, tokens/s, peak memory and MFU of `PretrainTask`, eager vs `torch.compile`, in one run.

One step = the official V-JEPA 2 step of `PretrainTask.compute_loss` (target encoder on the full clip, one
context-encoder + predictor pass per mask config, L1 loss) + backward + AdamW step + EMA update, on a synthetic
batch with the two V-JEPA 2 mask configs (`MaskCollator`). tokens/s counts clip tokens (B · T/2 · (H/16)²), as
`train/tokens_per_s` in the task logs.

``--precision bf16`` runs the loss under ``torch.autocast(bfloat16)`` with fp32 weights and optimizer state (what
Lightning's ``bf16-mixed`` does). FLOPs per step are counted once with ``torch.utils.flop_counter.FlopCounterMode``
(matmuls, convolutions and attention, forward and backward, as executed: activation checkpointing's recomputation
included); MFU = FLOPs per step ÷ seconds per step ÷ ``--peak-tflops`` (dense peak of the device at the precision
run; known GPUs are filled in for bf16). Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA.

    PYTHONPATH=. python benchmarks/pretrain_step.py --preset vit_tiny --img-size 64 --frames 8 --batch 8
    # ViT-L 16x256², the official predictor, bf16, activation checkpointing, on one GPU:
    PYTHONPATH=. python benchmarks/pretrain_step.py --device cuda --precision bf16 --preset vit_large \
        --img-size 256 --frames 16 --batch 24 --predictor official --checkpointing --steps 10 --warmup 3
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch.utils import flop_counter

from jepa.data.masks import MaskCollator
from jepa.optim import ema_update
from jepa.tasks.pretrain import PretrainTask

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, matched against the device name.
BF16_PEAK_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0, "A100": 312.0}


def _register_cpu_attention_flops() -> None:
    """Count the CPU flash-attention kernel like the CUDA ones (FlopCounterMode has no formula for it: 0 FLOPs)."""
    aten = torch.ops.aten
    if aten._scaled_dot_product_flash_attention_for_cpu in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)
    def _forward(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query, key, value)

    @flop_counter.register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)
    def _backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)


def make_task(
    preset: str,
    img_size: int,
    frames: int,
    depth: int | None,
    compile_models: bool,
    predictor: str,
    checkpointing: bool,
) -> PretrainTask:
    overrides = {"img_size": img_size, "num_frames": frames}
    if depth is not None:
        overrides["depth"] = depth
    # "official": PredictorConfig's defaults (12 blocks x 384, 12 heads) as in every V-JEPA 2 recipe
    predictor_overrides = {} if predictor == "official" else {"embed_dim": 96, "depth": 2, "num_heads": 4}
    torch.manual_seed(0)
    task = PretrainTask(
        encoder=preset,
        encoder_overrides=overrides,
        predictor_overrides=predictor_overrides,
        activation_checkpointing=checkpointing,
        compile=compile_models,  # PretrainTask(compile=True): torch.compile(dynamic=True) in place
    )
    task.compile_models()  # what configure_model does under a Trainer
    return task


def peak_tflops(device: torch.device, precision: str, given: float | None) -> float | None:
    """The device's dense peak for the MFU denominator: ``given``, else a known GPU's bf16 figure, else None."""
    if given is not None:
        return given
    if device.type == "cuda" and precision == "bf16":
        name = torch.cuda.get_device_name(device)
        return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)
    return None


class StepRunner:
    """One optimisation step of `task` on `device`, under bf16 autocast when asked."""

    def __init__(self, task: PretrainTask, device: torch.device, precision: str) -> None:
        self.task = task.to(device)
        self.device = device
        self.autocast = precision == "bf16"
        self.optimizer = torch.optim.AdamW([p for p in task.parameters() if p.requires_grad], lr=1e-4)

    def __call__(self, batch) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss, _ = self.task.compute_loss(batch, rank=False)  # target_erank is only computed on logging steps
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        ema_update(self.task.target_encoder, self.task.encoder, 0.99925)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def time_steps(runner: StepRunner, batches: list, warmup: int) -> list[float]:
    """Wall seconds of each step after `warmup` untimed steps (the batch is on the device before the clock starts)."""
    times = []
    for i, batch in enumerate(batches):
        batch = move_data_to_device(batch, runner.device)
        runner.synchronize()
        start = time.perf_counter()
        runner(batch)
        runner.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def count_flops(runner: StepRunner, batch) -> float:
    """FLOPs of one step (forward + backward), counted by dispatch on an eager task."""
    _register_cpu_attention_flops()
    counter = flop_counter.FlopCounterMode(display=False)
    with counter:
        runner(move_data_to_device(batch, runner.device))
    return float(counter.get_total_flops())


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
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--predictor", choices=["tiny", "official"], default="tiny", help="tiny: 2 blocks x 96")
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing of every block")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (known GPUs: auto)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    collator = MaskCollator(dataset_fpcs=[args.frames], crop_size=args.img_size)
    torch.manual_seed(1)
    batches = [
        collator(
            [{"clips": [torch.randn(3, args.frames, args.img_size, args.img_size)], "fpc": args.frames}] * args.batch
        )
        for _ in range(args.warmup + args.steps)
    ]
    tokens = args.batch * (args.frames // 2) * (args.img_size // 16) ** 2
    peak = peak_tflops(device, args.precision, args.peak_tflops)
    print(f"preset {args.preset} {args.frames}x{args.img_size}^2, batch {args.batch}, {tokens} clip tokens/step, "
          f"predictor {args.predictor}, {args.precision}, checkpointing {args.checkpointing}, device {device}"
          f"{f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''}, "
          f"peak {peak if peak is not None else 'unknown'} TFLOP/s, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    columns = "steps/s | tokens/s | speed-up | peak memory GiB | TFLOP/step | MFU"
    print(f"| mode | s/step (median of {args.steps}) | {columns} |")
    print("|---|---|---|---|---|---|---|---|")
    baseline = None
    flops = None
    for mode in args.modes.split(","):
        try:
            runner = StepRunner(
                make_task(args.preset, args.img_size, args.frames, args.depth, mode == "compile", args.predictor,
                          args.checkpointing),
                device, args.precision,
            )  # fmt: skip
            if flops is None and mode == "eager":
                flops = count_flops(runner, batches[0])  # also a first warm-up step
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds = statistics.median(time_steps(runner, batches, args.warmup))
        except Exception as error:  # compile may be unavailable (no C++ compiler): report, do not hide
            print(f"| {mode} | failed: {type(error).__name__}: {str(error).splitlines()[0][:120]} | | | | | | |")
            continue
        baseline = baseline or seconds
        memory = f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}" if device.type == "cuda" else "n/a"
        tflop = f"{flops / 1e12:.3g}" if flops else "n/a"
        mfu = f"{100 * flops / seconds / (peak * 1e12):.1f} %" if flops and peak else "n/a"
        print(f"| {mode} | {seconds:.3f} | {1 / seconds:.2f} | {tokens / seconds:,.0f} | {baseline / seconds:.2f}x "
              f"| {memory} | {tflop} | {mfu} |", flush=True)  # fmt: skip
        del runner
        with contextlib.suppress(Exception):
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
