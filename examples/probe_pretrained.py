"""Probe a pretraining checkpoint against a random encoder of the same architecture (the CPU learning check).

Exports the EMA target encoder and the context encoder of a `jepa fit` pretraining checkpoint with `jepa.export`
(the same code as `jepa export`), loads them back with `jepa.load_pretrained`, builds a freshly initialised encoder
of the same architecture (``--seed``), and trains light probes (`jepa.evaluation.frozen_probes`: every clip decoded
once and encoded by every encoder, full-batch AdamW) on the frozen features of each. Prints a markdown table of
validation top-1 % (training top-1 % in parentheses) and writes the numbers as JSON with ``--json``.

``--frame-baseline`` adds per-frame image baselines (`jepa.encoders.FrameEncoder`, one frame per tubelet): the
pretrained target encoder and the random one, each run on single frames, so they see no motion.
``--train-per-class N[,M…]`` probes with only N labelled training videos per class (a fixed random subset per N,
drawn with ``--seed``), one table per N.

    python examples/probe_pretrained.py runs/pretrain_quickstart_swarm/lightning_logs/version_0/checkpoints/last.ckpt \\
        --train data/synth_swarm/train.csv --val data/synth_swarm/val.csv
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

import jepa
from jepa.data.csv_list import read_sample_list
from jepa.encoders.frame_encoder import FrameEncoder
from jepa.encoders.vit import VideoViT
from jepa.evaluation import frozen_probes_per_train_set
from jepa.export import export

# probe kind -> (full-batch AdamW steps, learning rate), as in examples/learning_check.py
PROBES = {"linear": (300, 1e-2), "temporal": (300, 1e-2), "attentive": (200, 3e-3)}


def load_encoders(ckpt: str, seed: int, frame_baseline: bool = False) -> dict[str, torch.nn.Module]:
    """``{"random", "target", "context"}`` encoders: a fresh one of the checkpoint's architecture, then its two;
    with ``frame_baseline`` also ``"frames_random"`` and ``"frames_target"`` (those two per frame)."""
    encoders: dict[str, torch.nn.Module] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, which in (("target", "target_encoder"), ("context", "encoder")):
            directory = export(ckpt, str(Path(tmp) / name), to="jepa", which=which)
            encoders[name] = jepa.load_pretrained(directory, with_predictor=False).encoder
    torch.manual_seed(seed)
    encoders = {"random": VideoViT(encoders["target"].config).eval(), **encoders}
    if frame_baseline:  # one frame per tubelet, as the paper's image baselines; same token count as the video model
        stride = int(encoders["target"].config.tubelet_size)
        for name in ("random", "target"):
            encoders[f"frames_{name}"] = FrameEncoder(encoders[name], frame_stride=stride).eval()
    return encoders


def per_class_subset(samples: list[tuple[str, int]], per_class: int, seed: int) -> list[tuple[str, int]]:
    """``per_class`` samples of each label, drawn without replacement with ``seed`` (all when ``per_class`` is 0)."""
    if per_class <= 0:
        return samples
    generator = torch.Generator().manual_seed(seed)
    subset: list[tuple[str, int]] = []
    for label in sorted({label for _, label in samples}):
        members = [sample for sample in samples if sample[1] == label]
        if len(members) < per_class:
            raise ValueError(f"--train-per-class {per_class}: class {label} has only {len(members)} training videos")
        order = torch.randperm(len(members), generator=generator)[:per_class].tolist()
        subset.extend(members[i] for i in sorted(order))
    return subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="Lightning checkpoint of a PretrainTask run")
    parser.add_argument("--train", required=True, help="probe training list (CSV `path label`)")
    parser.add_argument("--val", required=True, help="probe validation list")
    parser.add_argument("--probes", default="linear,temporal,attentive", help=f"comma-separated of {list(PROBES)}")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--fps", type=float, default=4.0, help="clip sampling rate")
    parser.add_argument("--crop", type=int, default=64, help="centre crop size")
    parser.add_argument("--repeats", type=int, default=2, help="clips per training video (random positions)")
    parser.add_argument("--seed", type=int, default=0, help="random encoder initialisation, clip sampling and probes")
    parser.add_argument("--frame-baseline", action="store_true", help="add per-frame baselines (random, target)")
    parser.add_argument(
        "--train-per-class", default="0", help="labelled training videos per class, comma-separated (0: all)"
    )
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    args = parser.parse_args()
    kinds = [k for k in args.probes.split(",") if k]
    unknown = sorted(set(kinds) - set(PROBES))
    if unknown:
        parser.error(f"--probes: unknown {unknown}, expected some of {list(PROBES)}")
    try:
        sizes = [int(n) for n in args.train_per_class.split(",") if n]
    except ValueError:
        parser.error(f"--train-per-class: expected comma-separated integers, got {args.train_per_class!r}")
    train, val = read_sample_list(args.train), read_sample_list(args.val)
    num_classes = 1 + max(label for _, label in train + val)
    subsets = [per_class_subset(train, per_class, args.seed) for per_class in sizes]
    encoders = load_encoders(args.ckpt, args.seed, args.frame_baseline)
    all_results = frozen_probes_per_train_set(  # the validation clips are encoded once for every training set
        encoders, subsets, val, num_classes, probes={k: PROBES[k] for k in kinds},
        frames_per_clip=args.frames, fps=args.fps, crop_size=args.crop, train_repeats=args.repeats, seed=args.seed,
    )  # fmt: skip
    runs = []
    print(f"{num_classes} classes, chance {100 / num_classes:.1f} %; val top-1 % (train top-1 %)")
    for per_class, subset, out in zip(sizes, subsets, all_results, strict=True):
        results = {
            name: {k: [round(100 * r.top1, 1), round(100 * r.train_top1, 1)] for k, r in row.items()}
            for name, row in out.items()
        }
        print(f"\n{len(subset)} training videos ({per_class or 'all'} per class), {len(val)} validation videos")
        print("| encoder | " + " | ".join(kinds) + " |")
        print("|---" * (len(kinds) + 1) + "|")
        for name, row in results.items():
            print(f"| {name} | " + " | ".join(f"{row[k][0]:.1f} ({row[k][1]:.1f})" for k in kinds) + " |")
        runs.append({"train_per_class": per_class, "num_train": len(subset), **results})
    if args.json:
        report = {"ckpt": args.ckpt, "num_classes": num_classes, "runs": runs}
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
