"""Probe a pretraining checkpoint against a random encoder of the same architecture (the CPU learning check).

Exports the EMA target encoder and the context encoder of a `jepa fit` pretraining checkpoint with `jepa.export`
(the same code as `jepa export`), loads them back with `jepa.load_pretrained`, builds a freshly initialised encoder
of the same architecture (``--seed``), and trains light probes (`jepa.evaluation.frozen_probes`: every clip decoded
once and encoded by the three encoders, full-batch AdamW) on the frozen features of each. Prints a markdown table
of validation top-1 % (training top-1 % in parentheses) and writes the numbers as JSON with ``--json``.

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
from jepa.encoders.vit import VideoViT
from jepa.evaluation import frozen_probes
from jepa.export import export

# probe kind -> (full-batch AdamW steps, learning rate), as in examples/learning_check.py
PROBES = {"linear": (300, 1e-2), "temporal": (300, 1e-2), "attentive": (200, 3e-3)}


def load_encoders(ckpt: str, seed: int) -> dict[str, torch.nn.Module]:
    """``{"random", "target", "context"}`` encoders: a fresh one of the checkpoint's architecture, then its two."""
    encoders: dict[str, torch.nn.Module] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, which in (("target", "target_encoder"), ("context", "encoder")):
            directory = export(ckpt, str(Path(tmp) / name), to="jepa", which=which)
            encoders[name] = jepa.load_pretrained(directory, with_predictor=False).encoder
    torch.manual_seed(seed)
    return {"random": VideoViT(encoders["target"].config).eval(), **encoders}


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
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    args = parser.parse_args()
    kinds = [k for k in args.probes.split(",") if k]
    unknown = sorted(set(kinds) - set(PROBES))
    if unknown:
        parser.error(f"--probes: unknown {unknown}, expected some of {list(PROBES)}")
    num_classes = 1 + max(label for _, label in read_sample_list(args.train) + read_sample_list(args.val))
    encoders = load_encoders(args.ckpt, args.seed)
    out = frozen_probes(
        encoders, args.train, args.val, num_classes, probes={k: PROBES[k] for k in kinds},
        frames_per_clip=args.frames, fps=args.fps, crop_size=args.crop, train_repeats=args.repeats, seed=args.seed,
    )  # fmt: skip
    results = {
        name: {k: [round(100 * r.top1, 1), round(100 * r.train_top1, 1)] for k, r in row.items()}
        for name, row in out.items()
    }
    print(f"{num_classes} classes, chance {100 / num_classes:.1f} %; val top-1 % (train top-1 %)")
    print("| encoder | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 1) + "|")
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{row[k][0]:.1f} ({row[k][1]:.1f})" for k in kinds) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"ckpt": args.ckpt, "num_classes": num_classes, **results}, indent=1))


if __name__ == "__main__":
    main()
