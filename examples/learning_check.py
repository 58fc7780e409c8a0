"""Does a short V-JEPA 2 pretraining run improve frozen features? A fast, in-memory experiment (CPU, minutes).

Renders synthetic motion clips in memory with `jepa.data.synthetic` (no mp4 round trip), pretrains a tiny encoder
with the library's `PretrainTask.compute_loss` (the official step: two V-JEPA 2 mask configs, layer-normed EMA
targets, L1) in a plain loop (AdamW with the official parameter groups, linear LR warm-up then constant, constant EMA
momentum), and probes the frozen target encoder, and a freshly initialised encoder of the same architecture, with the
light probes of `jepa.evaluation.frozen_probe` on fresh clips (``--ntrain`` / ``--nval``). Every probe line prints
``{probe: [val top-1 %, train top-1 %]}`` (``attz``: the attentive probe on per-dimension standardised
features) and ``erank``, the effective rank of the layer-normed features (:func:`jepa.metrics.effective_rank`).

Scenes (``--scene``): ``object`` (the quickstart data: one object on a static texture), ``pan`` (whole-frame
translation of a texture) and ``swarm`` (``--nobj`` squares all moving in the class direction on a plain
background); nuisances: ``--frame_noise`` (pixel noise, new every frame) and ``--flicker`` (coarse random cells, new
every frame). ``--masks`` replaces the two V-JEPA 2 mask configs (``small`` = 8 blocks at 0.15, ``big`` = 2 blocks
at 0.7, ``B:S[:T][,B:S[:T]]`` with ``T`` the temporal scale of a block, ``lo-hi`` or one value (default 1.0: full
tubes), or ``future:R``: context = the first R of the time slots minus one small block, target = the rest);
``--loss_exp`` sets `PretrainTask`'s loss exponent (official 1.0 = L1, 2.0 = L2). ``--hold 2`` shows every second
frame twice (motion only between tubelets), ``--recolor`` applies a random colour map per tubelet, a class ``a>b``
(e.g. ``left>right``) moves one way in the first half of the clip and the other way in the second, ``--nsub`` adds
probes on the first N labelled clips only, and ``--supervised`` trains the same encoder and probe end to end with
labels instead (a calibration of what the encoder can learn in the budget). ``--device cuda`` puts clips, models and
probes on a GPU and ``--bf16`` runs pretraining and feature extraction under bf16 autocast (weights stay fp32).

This is a research harness for iterating on the recipe quickly; the supported path is the CLI quickstart
(`jepa fit --config quickstart.yaml`, see docs/pretraining.md). Results are in docs/pretraining.md.

    OMP_NUM_THREADS=1 PYTHONPATH=. python examples/learning_check.py --steps 1000 --eval_every 500 --attentive
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.apply_func import move_data_to_device

from jepa.data import synthetic as S
from jepa.data.masks import MaskCollator
from jepa.evaluation.frozen_probe import train_probe
from jepa.metrics import effective_rank
from jepa.optim.ema import ema_update
from jepa.tasks.pretrain import PretrainTask

DEVICE, BF16 = torch.device("cpu"), False  # set from --device / --bf16 in main()

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)


def make_app(rng, size, a):
    """A random appearance with the background (`texture` = library default, `grey`, `plain`, `noise`) and radius."""
    app = S.sample_appearance(rng, size)
    if a.bg == "grey":  # the library's texture around a fixed mid-grey: no clip-wide background colour
        app.background = np.clip(app.background - app.background.mean(axis=(0, 1)) + 128.0, 0, 255).astype(np.float32)
    elif a.bg == "plain":
        app.background = np.full_like(app.background, rng.integers(30, 226, size=3).astype(np.float32))
    elif a.bg == "noise":
        base = rng.integers(30, 226, size=3).astype(np.float32)
        app.background = np.clip(base + rng.uniform(-a.bg_amp, a.bg_amp, size=app.background.shape), 0, 255).astype(
            np.float32
        )
    app.radius = float(rng.uniform(a.rmin, a.rmax) * size)
    return app


def offset(name, t, total, speed):
    """(dx, dy) of a translation class at rendered frame `t` of `total`; `a>b` = motion a, then b (equal halves)."""
    parts = name.split(">")
    seg = total / len(parts)
    dx = dy = 0.0
    for i, part in enumerate(parts):
        ux, uy, _ = S.MOTIONS[part]
        dt = min(max(t - i * seg, 0.0), seg)  # frames spent in segment i up to t
        dx, dy = dx + ux * speed * dt, dy + uy * speed * dt
    return dx, dy


def pan_clip(label, rng, a, classes):
    """Whole-frame translation ("camera pan") of a random torus texture with `cell`-pixel cells."""
    size, cell = a.size, a.cell
    n = size // cell
    coarse = rng.uniform(0, 255, size=(n, n, 3)).astype(np.float32)
    tex = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)  # (H, W, 3)
    speed = int(rng.integers(int(a.smin), int(a.smax) + 1))
    off = rng.integers(0, size, size=2)
    total = a.frames * a.step
    shifts = [offset(classes[label], t, total, speed) for t in range(0, total, a.step)]
    frames = np.stack([np.roll(tex, (int(off[0] + dy), int(off[1] + dx)), axis=(0, 1)) for dx, dy in shifts])
    x = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def swarm_clip(label, rng, a, classes):
    """`nobj` squares of random colours on a plain background, all moving in the class direction (torus wrap);
    `--mono`: light squares on a dark background, the same in every clip."""
    size = a.size
    speed = float(rng.uniform(a.smin, a.smax))
    bg = rng.integers(30, 226, size=3).astype(np.float32)
    pos = rng.uniform(0, size, size=(a.nobj, 2))
    cols = rng.integers(0, 256, size=(a.nobj, 3)).astype(np.float32)
    rad = rng.uniform(a.rmin, a.rmax, size=a.nobj) * size
    if a.mono:  # one fixed appearance for every clip: only positions, speed and direction vary (same RNG draws)
        bg, cols = np.full(3, 40.0, dtype=np.float32), np.full((a.nobj, 3), 220.0, dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = []
    total = a.frames * a.step
    for t in range(0, total, a.step):
        img = np.broadcast_to(bg, (size, size, 3)).copy()
        ox, oy = offset(classes[label], t, total, speed)
        for k in range(a.nobj):
            cx = (pos[k, 0] + ox) % size
            cy = (pos[k, 1] + oy) % size
            dx = np.abs(xx - cx)
            dx = np.minimum(dx, size - dx)  # torus distance
            dy = np.abs(yy - cy)
            dy = np.minimum(dy, size - dy)
            img[(dx <= rad[k]) & (dy <= rad[k])] = cols[k]
        frames.append(img)
    frames = np.stack(frames)
    x = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def add_noise(x, rng, a):
    """Unpredictable nuisances: coarse per-frame flicker (`--flicker`) and pixel noise (`--frame_noise`)."""
    if a.flicker > 0:  # coarse per-frame clutter: random flicker_cell-px cells, new every frame
        c = a.flicker_cell
        n = a.size // c
        f = rng.uniform(-a.flicker, a.flicker, size=(3, x.shape[1], n, n)).astype(np.float32)
        f = np.repeat(np.repeat(f, c, axis=2), c, axis=3)
        x = x + torch.from_numpy(f) / 255.0 / STD
    if a.frame_noise > 0:
        n = rng.normal(0, a.frame_noise / 255.0, size=x.shape).astype(np.float32)
        x = x + torch.from_numpy(n) / STD
    return x


def clip(label, rng, a, classes):
    """One normalised clip (3, frames, size, size) of class `label`, with the nuisances asked for."""
    x = clip0(label, rng, a, classes)
    if a.recolor:  # appearance unpredictable over time: a random colour map per tubelet (2 frames)
        for t in range(0, x.shape[1], 2):
            gains = torch.from_numpy(rng.uniform(0.5, 1.5, 3) * rng.choice([-1.0, 1.0], 3)).float()
            bias = torch.from_numpy(rng.uniform(-1.0, 1.0, 3)).float()
            perm = torch.from_numpy(rng.permutation(3))
            x[:, t : t + 2] = x[perm, t : t + 2] * gains.view(3, 1, 1, 1) + bias.view(3, 1, 1, 1)
    if a.hold > 1:  # each kept frame shown `hold` times: no motion inside a tubelet, only between tubelets
        x = x[:, :: a.hold].repeat_interleave(a.hold, dim=1)[:, : a.frames]
    return add_noise(x, rng, a)


def clip0(label, rng, a, classes):
    """The clean clip: frames taken every `step` rendered frames of the `--scene`."""
    if a.scene == "swarm":
        return swarm_clip(label, rng, a, classes)
    if a.scene == "pan":
        return pan_clip(label, rng, a, classes)
    size = a.size
    app = make_app(rng, size, a)
    parts = classes[label].split(">")  # "a>b": motion a for the first half, then b
    total = a.frames * a.step
    specs = [S.MotionSpec(m, frames=total // len(parts)) for m in parts]
    specs[-1].frames += total - sum(sp.frames for sp in specs)
    speed = float(rng.uniform(a.smin, a.smax))
    for sp in specs:
        if sp.motion in ("left", "right", "up", "down"):
            sp.speed = speed
    frames, _ = S.render_motion_sequence(specs, rng, size=size, appearance=app)
    frames = frames[:: a.step][: a.frames]  # (T, H, W, 3)
    x = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255.0  # (3, T, H, W)
    return (x - MEAN) / STD


def dataset(n, seed, a, classes):
    rng = np.random.default_rng(seed)
    labels = rng.integers(len(classes), size=n)
    xs = torch.stack([clip(int(y), rng, a, classes) for y in labels])
    return xs, torch.as_tensor(labels)


@torch.no_grad()
def feats(enc, x, bs=64):
    enc.eval()
    with autocast():
        return torch.cat([enc(x[i : i + bs]).float() for i in range(0, len(x), bs)])


def autocast():
    """bf16 autocast on `--device` when `--bf16` is set (weights and optimizer state stay fp32)."""
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=BF16)


def probe_all(enc, train, val, a, tag, attentive=False):
    ft, fv = feats(enc, train[0]), feats(enc, val[0])
    for n in [int(v) for v in a.nsub.split(",") if v]:  # low-shot probes: the first n training clips only
        probe_feats(ft[:n], train[1][:n], fv, val[1], a, f"{tag}/n{n}", attentive)
    return probe_feats(ft, train[1], fv, val[1], a, tag, attentive)


def probe_feats(ft, yt, fv, yv, a, tag, attentive):
    out = {}
    nc = int(max(yt.max(), yv.max())) + 1
    kinds = [("linear", 300, 1e-2), ("temporal", 300, 1e-2)] + ([("attentive", 200, 3e-3)] if attentive else [])
    mu, sd = ft.mean((0, 1)), ft.std((0, 1)) + 1e-6
    for kind, steps, lr in kinds:
        r = train_probe((ft, yt), (fv, yv), nc, probe=kind, steps=steps, lr=lr, time_slots=a.frames // 2)
        out[kind] = (round(r.top1 * 100, 1), round(r.train_top1 * 100, 1))
        if kind == "attentive" and a.zprobe:
            r = train_probe(((ft - mu) / sd, yt), ((fv - mu) / sd, yv), nc, probe=kind, steps=steps, lr=lr)
            out["attz"] = (round(r.top1 * 100, 1), round(r.train_top1 * 100, 1))
    out["erank"] = round(float(effective_rank(F.layer_norm(ft, ft.shape[-1:]), max_rows=20000)), 1)
    # flatten: keeps token positions
    ftf, fvf = F.layer_norm(ft, ft.shape[-1:]).flatten(1), F.layer_norm(fv, fv.shape[-1:]).flatten(1)
    r = train_probe((ftf[:, None], yt), (fvf[:, None], yv), nc, probe="linear", steps=300, lr=1e-3, weight_decay=1e-2)
    out["flat"] = (round(r.top1 * 100, 1), round(r.train_top1 * 100, 1))
    print(tag, json.dumps(out), flush=True)
    return out


def supervised(enc, train, val, a, num_classes):
    """Calibration: encoder + 1-block attentive probe trained end to end with labels (AdamW, batch `--bs`; head LR
    `--lr` x 10, encoder LR `--lr`, weight decay 0.01), val top-1 every `--eval_every` steps; `--freeze_encoder` keeps
    the random encoder fixed (the probe alone, trained the same way)."""
    from jepa.probes.pooler import AttentivePooler

    pool = AttentivePooler(embed_dim=a.width, num_heads=max(1, a.width // 64), depth=1).to(DEVICE)
    head = torch.nn.Linear(a.width, num_classes).to(DEVICE)
    groups = [{"params": [*pool.parameters(), *head.parameters()], "lr": 10 * a.lr}]
    if not a.freeze_encoder:
        groups.append({"params": list(enc.parameters()), "lr": a.lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    g = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        idx = torch.randint(len(train[0]), (a.bs,), generator=g)
        enc.train(not a.freeze_encoder)
        with autocast():
            loss = F.cross_entropy(head(pool(enc(train[0][idx])).squeeze(1)).float(), train[1][idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % (a.eval_every or a.steps) == 0:
            enc.eval()
            with torch.no_grad():
                pred = torch.cat([head(pool(f).squeeze(1)).argmax(-1) for f in feats(enc, val[0]).split(64)])
            top1 = (pred == val[1]).float().mean().item() * 100
            print(f"supervised@{step} loss {loss.item():.3f} val {top1:.1f} {time.time() - t0:.0f}s", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--step", type=int, default=2)
    p.add_argument("--bg", default="texture")
    p.add_argument("--bg_amp", type=float, default=25)
    p.add_argument("--rmin", type=float, default=0.11)
    p.add_argument("--rmax", type=float, default=0.16)
    p.add_argument("--smin", type=float, default=0.6)
    p.add_argument("--smax", type=float, default=1.4)
    p.add_argument("--classes", default="left,right,up,down,cw,ccw")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--bs", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ema", type=float, default=0.99)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--pdepth", type=int, default=2)
    p.add_argument("--pwidth", type=int, default=96)
    p.add_argument("--ntrain", type=int, default=1200)
    p.add_argument("--nval", type=int, default=600)
    p.add_argument("--pool", type=int, default=4000, help="pretraining clip pool size (drawn with replacement)")
    p.add_argument("--eval_every", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default="")
    p.add_argument("--attentive", action="store_true")
    p.add_argument("--scene", default="object")
    p.add_argument("--cell", type=int, default=8)
    p.add_argument("--nobj", type=int, default=8)
    p.add_argument("--mono", action="store_true", help="swarm: fixed colours (light squares, dark background)")
    p.add_argument("--frame_noise", type=float, default=0.0)
    p.add_argument("--zprobe", action="store_true")
    p.add_argument("--flicker", type=float, default=0.0)
    p.add_argument("--flicker_cell", type=int, default=8)
    p.add_argument("--masks", default="official", help="official | small | big | B:S[:T][,B:S[:T]] | future:R")
    p.add_argument("--hold", type=int, default=1, help="show every hold-th frame hold times (motion between tubelets)")
    p.add_argument("--recolor", action="store_true", help="a random colour map (permute, gain, sign, bias) per tubelet")
    p.add_argument("--supervised", action="store_true", help="calibration: train encoder + probe with labels")
    p.add_argument("--freeze_encoder", action="store_true", help="with --supervised: train the probe only")
    p.add_argument("--nsub", default="", help="also probe with only the first N training clips (N[,N...])")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--loss_exp", type=float, default=1.0, help="PretrainTask loss_exp (official 1.0 = L1; 2.0 = L2)")
    p.add_argument("--freeze_patch_embed", action="store_true", help="keep the random patch projection (MoCo v3)")
    p.add_argument("--var_w", type=float, default=0.0, help="PretrainTask variance_weight (not official)")
    p.add_argument("--cov_w", type=float, default=0.0, help="PretrainTask covariance_weight (not official)")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:i]: models, clips and probes on this device")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for pretraining and feature extraction")
    a = p.parse_args()
    global DEVICE, BF16
    DEVICE, BF16 = torch.device(a.device), a.bf16
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(a.seed)
    classes = a.classes.split(",")
    t0 = time.time()
    train = dataset(a.ntrain, 1, a, classes)
    val = dataset(a.nval, 2, a, classes)
    pool, pool_labels = dataset(a.pool, 3, a, classes)
    train, val, pool, pool_labels = move_data_to_device((train, val, pool, pool_labels), DEVICE)
    print(f"data {time.time() - t0:.1f}s", flush=True)
    heads = max(1, a.width // 64)
    encoder_overrides = dict(img_size=a.size, num_frames=a.frames, depth=a.depth, patch_size=a.patch,
                             embed_dim=a.width, num_heads=heads)  # fmt: skip
    predictor_overrides = dict(embed_dim=a.pwidth, depth=a.pdepth, num_heads=4, num_mask_tokens=10)
    task = PretrainTask(
        encoder="vit_tiny", encoder_overrides=encoder_overrides, predictor_overrides=predictor_overrides,
        ipe=25, epochs=1000, warmup_epochs=1, start_lr=a.lr / 5, lr=a.lr, final_lr=a.lr,
        variance_weight=a.var_w, covariance_weight=a.cov_w, loss_exp=a.loss_exp,
    )  # fmt: skip
    if a.supervised:  # calibration: the same encoder trained with labels (no JEPA)
        supervised(PretrainTask(encoder="vit_tiny", encoder_overrides=encoder_overrides).encoder.to(DEVICE),
                   (pool, pool_labels), val, a, len(classes))  # fmt: skip
        return
    rand = PretrainTask(
        encoder="vit_tiny", encoder_overrides=encoder_overrides, predictor_overrides=predictor_overrides
    ).target_encoder.to(DEVICE)  # a fresh encoder of the same architecture (next draws of the seeded RNG)
    probe_all(rand, train, val, a, "random", attentive=a.attentive)
    from jepa.data.masks import MaskConfig

    if a.masks == "official":
        cfgs = None
    elif a.masks.startswith("future:"):  # context = the first slots (minus one small block), target = the rest
        cfgs = [MaskConfig(num_blocks=1, max_temporal_keep=float(a.masks[7:]), full_complement=True)]
    else:
        spec = {"small": "8:0.15", "big": "2:0.7"}.get(a.masks, a.masks)
        cfgs = []
        for t in spec.split(","):  # B:S or B:S:T (T = temporal scale, "lo-hi" or one value)
            b, sc, *tsc = t.split(":")
            lo, _, hi = (tsc[0] if tsc else "1.0").partition("-")
            cfgs.append(MaskConfig(num_blocks=int(b), spatial_scale=(float(sc), float(sc)),
                                   temporal_scale=(float(lo), float(hi or lo))))  # fmt: skip
    collator = MaskCollator(
        mask_configs=cfgs,
        dataset_fpcs=[a.frames],
        crop_size=a.size,
        patch_size=a.patch,
        tubelet_size=2,
        seed_mode="shared",
    )
    if a.freeze_patch_embed:
        for param in task.encoder.patch_embed.parameters():
            param.requires_grad_(False)
    task.to(DEVICE)
    opt = task.configure_optimizers()
    g = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        lr = a.lr * min(1.0, step / 25)
        for grp in opt.param_groups:
            grp["lr"] = lr
        idx = torch.randint(len(pool), (a.bs,), generator=g)
        x = pool[idx]
        if torch.rand(1, generator=g).item() < 0.5:
            x = x.flip(-1).contiguous()  # hflip (swaps left/right: fine, no labels)
        batch = move_data_to_device(collator([{"clips": [c]} for c in x]), DEVICE)
        task.encoder.train()
        with autocast():
            loss, stats = task.compute_loss(batch, rank=step % 50 == 0)  # target_erank for the progress line
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update(task.target_encoder, task.encoder, a.ema)
        if step % 50 == 0:
            print(
                f"step {step} loss {loss.item():.4f} std {stats['target_std'].item():.3f} "
                f"erank {stats['target_erank'].item():.1f} "
                f"{(time.time() - t0) / step:.2f}s/step",
                flush=True,
            )
        if a.eval_every and step % a.eval_every == 0 and step != a.steps:
            probe_all(task.target_encoder, train, val, a, f"target@{step}", attentive=a.attentive)
    probe_all(task.target_encoder, train, val, a, f"target@{a.steps}", attentive=a.attentive)
    probe_all(task.encoder, train, val, a, f"context@{a.steps}", attentive=a.attentive and a.ema >= 1.0)
    if a.save:
        torch.save(
            {
                "target": task.target_encoder.state_dict(),
                "encoder": task.encoder.state_dict(),
                "predictor": task.predictor.state_dict(),
                "args": vars(a),
            },
            a.save,
        )


if __name__ == "__main__":
    main()
