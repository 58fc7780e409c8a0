"""Encoder forward time: `jepa` VideoViT vs `transformers.VJEPA2Model`, identical weights, same input and process.

Runs alternate (ours, theirs, ours, …) so both see the same machine state; the median of each is reported with
the ratio ours/theirs (< 1 means jepa is faster), the achieved GFLOP/s of ours, and the machine's measured fp32
matmul GFLOP/s for reference.

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=1073741824 \
        python benchmarks/encoder_throughput.py --presets tiny vitl --repeats 3

On a GPU, ``--device cuda --dtype bfloat16 --frames 64`` times bf16 clips/s and peak memory instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

import torch

from jepa.encoders import VideoViT
from jepa.encoders.config import EncoderConfig
from jepa.hub.layouts import hf_to_official

PRESETS = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "vitl": dict(embed_dim=1024, depth=24, num_heads=16),
    "vitg": dict(embed_dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11),
}


@dataclass
class Row:
    preset: str
    shape: str
    ours_s: float
    theirs_s: float
    gflop: float

    @property
    def ratio(self) -> float:
        return self.ours_s / self.theirs_s


def encoder_flops(cfg: EncoderConfig, frames: int, size: int, batch: int) -> float:
    """Multiply-adds ×2 of one encoder forward (patch embedding, attention, MLP; norms ignored)."""
    tokens = (frames // cfg.tubelet_size) * (size // cfg.patch_size) ** 2
    dim, hidden = cfg.embed_dim, cfg.mlp_hidden_dim
    patch = 2 * tokens * dim * cfg.in_chans * cfg.tubelet_size * cfg.patch_size**2
    per_block = (
        2 * tokens * dim * 3 * dim + 2 * 2 * tokens**2 * dim + 2 * tokens * dim * dim + 2 * 2 * tokens * dim * hidden
    )
    return batch * (patch + cfg.depth * per_block)


def matmul_gflops(device: str, size: int = 2048, repeats: int = 10) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build_pair(preset: str, size: int, frames: int) -> tuple[VideoViT, torch.nn.Module, EncoderConfig]:
    from transformers import VJEPA2Config, VJEPA2Model

    arch = PRESETS[preset]
    hf_config = VJEPA2Config(
        hidden_size=arch["embed_dim"],
        num_hidden_layers=arch["depth"],
        num_attention_heads=arch["num_heads"],
        mlp_ratio=arch.get("mlp_ratio", 4.0),
        crop_size=size,
        frames_per_clip=frames,
        pred_num_hidden_layers=1,
        attn_implementation="sdpa",
    )
    theirs = VJEPA2Model(hf_config).eval()
    config = EncoderConfig(img_size=size, num_frames=frames, **arch)
    ours = VideoViT(config).eval()
    ours.load_state_dict(hf_to_official(theirs.state_dict())["encoder"], strict=True)
    return ours, theirs, config


@torch.inference_mode()
def time_pair(
    ours: VideoViT, theirs: torch.nn.Module, video: torch.Tensor, repeats: int, device: str
) -> tuple[float, float]:
    hf_video = video.permute(0, 2, 1, 3, 4).contiguous()  # (B, T, C, H, W), the transformers layout
    ours(video)
    theirs(pixel_values_videos=hf_video, skip_predictor=True)  # warm-up both
    ours_times, theirs_times = [], []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        ours(video)
        _sync(device)
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs(pixel_values_videos=hf_video, skip_predictor=True)
        _sync(device)
        theirs_times.append(time.perf_counter() - start)
    return statistics.median(ours_times), statistics.median(theirs_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "vitl"], choices=sorted(PRESETS))
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, dtype {args.dtype}")
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"malloc settings: {malloc or 'default'}")
    peak = matmul_gflops(args.device)
    print(f"measured fp32 matmul peak: {peak:.0f} GFLOP/s")
    rows = []
    for preset in args.presets:
        ours, theirs, config = build_pair(preset, args.size, args.frames)
        ours, theirs = ours.to(args.device, dtype), theirs.to(args.device, dtype)
        video = torch.randn(args.batch, 3, args.frames, args.size, args.size, device=args.device, dtype=dtype)
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        ours_s, theirs_s = time_pair(ours, theirs, video, args.repeats, args.device)
        shape = f"{args.batch}x{args.frames}x{args.size}x{args.size}"
        rows.append(
            Row(preset, shape, ours_s, theirs_s, encoder_flops(config, args.frames, args.size, args.batch) / 1e9)
        )
        if args.device.startswith("cuda"):
            print(f"{preset}: peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        del ours, theirs
    print()
    print(
        "| preset | input (B×T×H×W) | jepa s | transformers s | ratio jepa/transformers "
        "| jepa GFLOP/s | % of matmul peak |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        achieved = row.gflop / row.ours_s
        print(
            f"| {row.preset} | {row.shape} | {row.ours_s:.3f} | {row.theirs_s:.3f} | {row.ratio:.3f} | "
            f"{achieved:.0f} | {100 * achieved / peak:.0f}% |"
        )


if __name__ == "__main__":
    main()
