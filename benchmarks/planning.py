"""Seconds per planned action of CEM with a small AC predictor: KV cache vs the official uncached rollout, eager vs
``torch.compile``, in the same run.

    PYTHONPATH=. python benchmarks/planning.py [--device cpu] [--repeats 2] [--compile]

Settings (spec ac_planning.md §6.4): 800 samples × 10 iterations at horizon 1 (paper robot setting), 400 samples ×
10 iterations at horizons 2, 4 and 8 (the WorldModel default is horizon 2). The predictor is small (64 wide, 2
blocks, 4 heads) on 16 patch tokens per frame (64 px / 16) so the benchmark runs on a CPU; features are random
(the encoder is not part of the planning loop). Prints a table and the cached/uncached speed-up.
"""

from __future__ import annotations

import argparse
import time

import torch

from jepa.planning.cem import CEMConfig, cem
from jepa.planning.energy import WorldModel, feature_norm
from jepa.predictors.action_conditioned import ac_predictor_tiny

SETTINGS = [(1, 800), (2, 400), (4, 400), (8, 400)]  # (horizon, samples); 10 iterations each


def time_plan(world_model: WorldModel, horizon: int, samples: int, device: str, repeats: int) -> float:
    """Median seconds of one CEM call (= one planned action in MPC)."""
    tokens, dim = 16, world_model.predictor.config.encoder_dim
    g = torch.Generator(device=device).manual_seed(0)
    feat = feature_norm(torch.randn(1, tokens, dim, generator=g, device=device))
    goal = feature_norm(torch.randn(1, tokens, dim, generator=g, device=device))
    state = torch.zeros(1, 7, device=device)
    cfg = CEMConfig(horizon=horizon, samples=samples, topk=10, iterations=10, momentum_mean=0.15, momentum_std=0.15)

    def energy(actions: torch.Tensor) -> torch.Tensor:
        return world_model.energy(feat, state, goal, actions)

    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):  # first call = warm-up (and compilation)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            cem(energy, cfg, generator=g, device=device).actions.cpu()  # one host sync at the end
            times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(predictor)")
    args = parser.parse_args()
    torch.manual_seed(0)
    predictor = ac_predictor_tiny(encoder_dim=64, embed_dim=64, depth=2, num_heads=4).eval().to(args.device)
    variants = [("eager", predictor)]
    if args.compile:
        variants.append(("compile", torch.compile(predictor)))
    print(f"device={args.device} threads={torch.get_num_threads()} predictor=64w x 2 blocks, 16+2 tokens/frame")
    print("| horizon | samples | mode | uncached s/action | cached s/action | speed-up |")
    print("|---|---|---|---|---|---|")
    for horizon, samples in SETTINGS:
        for name, module in variants:
            result = {}
            for use_cache in (False, True):
                wm = WorldModel(torch.nn.Identity(), module, use_cache=use_cache).to(args.device)
                result[use_cache] = time_plan(wm, horizon, samples, args.device, args.repeats)
            print(f"| {horizon} | {samples} | {name} | {result[False]:.3f} | {result[True]:.3f} | "
                  f"{result[False] / result[True]:.2f}x |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
