"""Seconds per planned action of CEM with a small AC predictor: KV cache vs the official uncached rollout, eager vs
``torch.compile``, in the same run.

    PYTHONPATH=. python benchmarks/planning.py [--device cpu] [--repeats 2] [--compile] [--settings 1x800,2x400]
                                               [--json out.json]

Settings (spec ac_planning.md §6.4): 800 samples × 10 iterations at horizon 1 (paper robot setting), 400 samples ×
10 iterations at horizons 2 and 4 (the WorldModel default is horizon 2). The predictor is small (64 wide, 2 blocks,
4 heads) on 16 patch tokens per frame (64 px / 16) so the benchmark runs on a CPU; features are random (the encoder
is not part of the planning loop). One planned action = one CEM call (10 batched predictor rollouts).

Compilation: ``torch.compile(predictor, dynamic=False, mode="default")``, i.e. one static-shape graph per distinct
rollout step (batch, frames, cached frames); the recompile limit is raised so no shape falls back to eager. The first
CEM call of every (setting, cache) pair compiles its graphs; its time minus the steady-state time is the compile time,
reported separately from the timed calls (median of ``--repeats`` calls after it). Calls of the four variants
(eager / compiled × uncached / cached) alternate, so load changes of a shared machine hit all of them alike. Eager
runs get the same untimed first call. Torch runs with ``--threads`` threads (default 1).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from jepa.planning.cem import CEMConfig, cem
from jepa.planning.energy import WorldModel, feature_norm
from jepa.predictors.action_conditioned import ac_predictor_tiny

DEFAULT_SETTINGS = "1x800,2x400,4x400"  # horizon x samples; 10 iterations each
TOKENS = 16  # patch tokens per frame (64 px / 16)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_plans(
    world_models: dict[str, WorldModel], horizon: int, samples: int, device: str, repeats: int
) -> dict[str, tuple[float, float]]:
    """Time CEM calls (= planned actions in MPC) of several world models, interleaved call by call so that load
    changes of a shared machine hit all of them alike.

    Returns:
        Per name ``(first, median)``: seconds of the first call (warm-up, includes compilation) and the median of
        the ``repeats`` calls after it.
    """
    dim = next(iter(world_models.values())).predictor.config.encoder_dim
    g = torch.Generator(device=device).manual_seed(0)
    feat = feature_norm(torch.randn(1, TOKENS, dim, generator=g, device=device))
    goal = feature_norm(torch.randn(1, TOKENS, dim, generator=g, device=device))
    state = torch.zeros(1, 7, device=device)
    cfg = CEMConfig(horizon=horizon, samples=samples, topk=10, iterations=10, momentum_mean=0.15, momentum_std=0.15)
    times: dict[str, list[float]] = {name: [] for name in world_models}
    with torch.no_grad():
        for _ in range(repeats + 1):
            for name, wm in world_models.items():

                def energy(actions: torch.Tensor, wm: WorldModel = wm) -> torch.Tensor:
                    return wm.energy(feat, state, goal, actions)

                _sync(device)
                start = time.perf_counter()
                cem(energy, cfg, generator=g, device=device).actions.cpu()  # one host sync at the end
                times[name].append(time.perf_counter() - start)
    return {name: (t[0], sorted(t[1:])[len(t[1:]) // 2]) for name, t in times.items()}


def parse_settings(text: str) -> list[tuple[int, int]]:
    """``"1x800,2x400"`` → ``[(1, 800), (2, 400)]`` (horizon, samples)."""
    out = []
    for item in text.split(","):
        horizon, _, samples = item.strip().partition("x")
        if not horizon.isdigit() or not samples.isdigit():
            raise ValueError(f"--settings: expected HORIZONxSAMPLES items such as 2x400, got {item!r}")
        out.append((int(horizon), int(samples)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=2, help="timed CEM calls after the warm-up call")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="comma-separated HORIZONxSAMPLES")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(predictor)")
    parser.add_argument("--no-eager", action="store_true", help="skip the eager rows (with --compile)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    predictor = ac_predictor_tiny(encoder_dim=64, embed_dim=64, depth=2, num_heads=4).eval().to(args.device)
    variants = [] if args.no_eager else [("eager", predictor)]
    if args.compile:
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = 256  # one static graph per rollout step shape: never fall back to eager
        variants.append(("compiled", torch.compile(predictor, dynamic=False, mode="default")))
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"predictor=64w x 2 blocks x 4 heads, {TOKENS}+2 tokens/frame, 10 CEM iterations", flush=True)  # fmt: skip
    print("| horizon | samples | mode | uncached s/action | cached s/action | speed-up | 1st call unc. / cached s |")
    print("|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for horizon, samples in parse_settings(args.settings):
        wms = {
            (name, c): WorldModel(torch.nn.Identity(), module, use_cache=c).to(args.device)
            for name, module in variants
            for c in (False, True)
        }
        timed = time_plans({f"{n}/{c}": wm for (n, c), wm in wms.items()}, horizon, samples, args.device, args.repeats)
        for name, _ in variants:
            first = {c: timed[f"{name}/{c}"][0] for c in (False, True)}
            steady = {c: timed[f"{name}/{c}"][1] for c in (False, True)}
            row = {
                "horizon": horizon, "samples": samples, "mode": name,
                "uncached_s": steady[False], "cached_s": steady[True], "speedup": steady[False] / steady[True],
                "first_uncached_s": first[False], "first_cached_s": first[True],
            }  # fmt: skip
            rows.append(row)
            print(f"| {horizon} | {samples} | {name} | {steady[False]:.3f} | {steady[True]:.3f} | "
                  f"{row['speedup']:.2f}x | {first[False]:.1f} / {first[True]:.1f} |", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "threads": torch.get_num_threads(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
