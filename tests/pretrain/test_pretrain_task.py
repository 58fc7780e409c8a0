"""PretrainTask: one Lightning step equals the step written by hand from pretraining.md §3–§6."""

from __future__ import annotations

import copy
import inspect
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader

import jepa
from jepa.data.masks import MaskCollator
from jepa.encoders import EncoderConfig, VideoViT
from jepa.predictors import MaskPredictor, PredictorConfig
from jepa.tasks.pretrain import PretrainTask

CONFIG_DIR = Path(jepa.__file__).resolve().parent / "configs" / "pretrain"
SCHEDULE = dict(
    ipe=5, epochs=4, warmup_epochs=1, start_lr=1e-3, lr=2e-3, final_lr=1e-4, weight_decay=0.05, final_weight_decay=0.1
)
T_MAX = int(1.25 * 4 * 5)  # 25


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread avoids oversubscription on the shared 2-core test machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _models():
    torch.manual_seed(0)
    enc = VideoViT(EncoderConfig(embed_dim=48, depth=1, num_heads=2, img_size=64, num_frames=4))
    pred = MaskPredictor(
        PredictorConfig(
            encoder_dim=48, embed_dim=48, depth=1, num_heads=2, img_size=64, num_frames=4, num_mask_tokens=2
        )
    )
    with torch.no_grad():
        pred.mask_tokens[1].normal_()  # distinguishes mask_index 0 and 1
    return enc, pred


def _batch(seed=0):
    torch.manual_seed(seed)
    collator = MaskCollator(dataset_fpcs=[4, 2], crop_size=64)
    samples = [{"clips": [torch.randn(3, fpc, 64, 64)], "fpc": fpc} for fpc in (4, 2, 4)]
    return collator(samples)  # two fpc groups: 2 clips of 4 frames, 1 clip of 2 frames


def _loader(*batches):
    """A DataLoader yielding prebuilt MaskCollator batches unchanged."""
    return DataLoader(list(batches), batch_size=1, collate_fn=lambda items: items[0])


def _trainer(**kwargs):
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


class _Outputs(pl.Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


def _manual_step(enc, pred, tgt, batch, lr, wd, momentum):
    groups = []
    for i, (data, masks_enc, masks_pred) in enumerate(batch):
        clips = data["clips"][0]
        with torch.no_grad():
            h = tgt(clips)
            h = F.layer_norm(h, (h.shape[-1],))
        for me, mp in zip(masks_enc, masks_pred, strict=True):
            p = pred(enc(clips, masks=[me]), me, mp, mask_index=i)
            gathered = torch.gather(h, 1, mp.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
            groups.append((p - gathered).abs().mean())
    loss = sum(groups) / len(groups)
    decay = lambda m: [p for n, p in m.named_parameters() if "bias" not in n and p.ndim != 1]  # noqa: E731
    no_decay = lambda m: [p for n, p in m.named_parameters() if "bias" in n or p.ndim == 1]  # noqa: E731
    opt = torch.optim.AdamW(
        [
            {"params": decay(enc), "weight_decay": wd},
            {"params": decay(pred), "weight_decay": wd},
            {"params": no_decay(enc), "weight_decay": 0.0},
            {"params": no_decay(pred), "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    loss.backward()
    opt.step()
    with torch.no_grad():
        for t, c in zip(tgt.parameters(), enc.parameters(), strict=True):
            t.copy_(momentum * t + (1 - momentum) * c)
    return float(loss.detach())


def test_one_step_matches_the_spec_by_hand():
    enc, pred = _models()
    enc_m, pred_m, tgt_m = copy.deepcopy(enc), copy.deepcopy(pred), copy.deepcopy(enc)
    batch = _batch()
    assert len(batch) == 2
    task = PretrainTask(encoder=enc, predictor=pred, ema=(0.9, 1.0), **SCHEDULE)
    outputs = _Outputs()
    _trainer(max_steps=1, callbacks=[outputs]).fit(task, train_dataloaders=_loader(batch))

    lr = 1e-3 + (1 / 5) * (2e-3 - 1e-3)  # schedule step 1 (warmup 5 steps)
    wd = 0.1 + (0.05 - 0.1) * 0.5 * (1 + math.cos(math.pi * 1 / T_MAX))
    expected_loss = _manual_step(enc_m, pred_m, tgt_m, batch, lr, wd, momentum=0.9)
    assert outputs.losses[0] == pytest.approx(expected_loss, rel=1e-5)
    assert task.ema_updates == 1
    for mine, ref in ((task.encoder, enc_m), (task.predictor, pred_m), (task.target_encoder, tgt_m)):
        for (name, a), b in zip(mine.named_parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not any(p.requires_grad for p in task.target_encoder.parameters())
    # the target moved by exactly (1 − m)(θ_c − θ_t0): not frozen, not copied
    assert not torch.equal(task.target_encoder.blocks[0].attn.qkv.weight, task.encoder.blocks[0].attn.qkv.weight)


def test_skipped_samples_are_logged_as_a_summed_metric():
    enc, pred = _models()
    batches = [_batch(0), _batch(1)]
    for batch, count in zip(batches, (2, 3), strict=True):
        for data, _, _ in batch:
            data["skipped"] = torch.tensor(count)  # per fpc group, as collate_samples reports it
    task = PretrainTask(encoder=enc, predictor=pred, ema=(0.9, 1.0), **SCHEDULE)
    trainer = _trainer(max_steps=2)
    trainer.fit(task, train_dataloaders=_loader(*batches))
    assert float(trainer.callback_metrics["data/skipped"]) == 2 * 2 + 2 * 3  # two groups per batch


class _EncoderAfterStep(pl.Callback):
    """Encoder parameters after every optimizer step (every 2nd micro-batch with accumulate_grad_batches=2)."""

    def __init__(self):
        self.snapshots = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (batch_idx + 1) % 2 == 0:
            self.snapshots.append([p.detach().clone() for p in pl_module.encoder.parameters()])


def test_ema_and_schedules_per_optimizer_step_with_accumulation():
    enc, pred = _models()
    initial = [p.detach().clone() for p in enc.parameters()]
    task = PretrainTask(encoder=enc, predictor=pred, ema=(0.9, 1.0), **SCHEDULE)
    snaps = _EncoderAfterStep()
    trainer = _trainer(max_steps=2, accumulate_grad_batches=2, log_every_n_steps=1, callbacks=[snaps])
    trainer.fit(task, train_dataloaders=_loader(*(_batch(i) for i in range(4))))
    assert task.ema_updates == 2 and trainer.global_step == 2  # once per optimizer step, not per micro-batch
    m1, m2 = 0.9, 0.9 + 1 * 0.1 / T_MAX  # momentum schedule steps 1 and 2
    c1, c2 = snaps.snapshots
    for t, t0, a, b in zip(task.target_encoder.parameters(), initial, c1, c2, strict=True):
        torch.testing.assert_close(t, m2 * (m1 * t0 + (1 - m1) * a) + (1 - m2) * b, rtol=0, atol=1e-6)
    metrics = trainer.callback_metrics
    assert float(metrics["train/momentum"]) == pytest.approx(m2)
    assert float(metrics["train/lr"]) == pytest.approx(1e-3 + (2 / 5) * 1e-3)  # schedule step 2
    assert float(metrics["train/context_tokens_mask0"]) > 0 and float(metrics["train/target_tokens_mask1"]) > 0
    assert 0.5 < float(metrics["train/target_std"]) <= 1.01  # LayerNorm'd targets of a fresh encoder
    width = task.target_encoder.config.embed_dim
    assert 2.0 < float(metrics["train/target_erank"]) <= width  # a fresh encoder's targets span many directions
    groups = trainer.optimizers[0].param_groups
    assert [g["name"] for g in groups] == ["encoder", "predictor", "encoder.no_decay", "predictor.no_decay"]
    assert groups[2]["weight_decay"] == 0.0 and groups[0]["weight_decay"] == pytest.approx(
        0.1 + (0.05 - 0.1) * 0.5 * (1 + math.cos(math.pi * 2 / T_MAX))
    )


def test_anneal_from_loads_weights_and_optimizer_but_restarts_the_step(tmp_path):
    enc, pred = _models()
    main = PretrainTask(encoder=enc, predictor=pred, **SCHEDULE)
    trainer = _trainer(max_steps=1)
    trainer.fit(main, train_dataloaders=_loader(_batch(0)))
    ckpt = tmp_path / "main.ckpt"
    trainer.save_checkpoint(ckpt)

    enc2, pred2 = _models()
    cool = PretrainTask(encoder=enc2, predictor=pred2, lr_schedule="linear_decay", anneal_from=str(ckpt), **SCHEDULE)
    for name in ("encoder", "predictor", "target_encoder"):
        for a, b in zip(getattr(cool, name).parameters(), getattr(main, name).parameters(), strict=True):
            assert torch.equal(a, b)
    trainer2 = _trainer(max_steps=1, log_every_n_steps=1)
    trainer2.fit(cool, train_dataloaders=_loader(_batch(1)))
    state = trainer2.optimizers[0].state_dict()["state"]
    assert int(state[0]["step"]) == 2  # Adam moments continued from the main phase
    assert float(trainer2.callback_metrics["train/lr"]) == pytest.approx(2e-3 + (1 / T_MAX) * (1e-4 - 2e-3))


def _synth(root):
    from jepa.data.synthetic import generate_synthetic_dataset

    generate_synthetic_dataset(root / "data" / "synth_motion", videos_per_class=1, val_videos_per_class=0, frames=20)


def test_quickstart_through_the_cli(tmp_path, monkeypatch):
    from jepa.cli import main

    _synth(tmp_path)
    monkeypatch.chdir(tmp_path)
    cli = main(
        [
            "fit",
            "--config",
            "quickstart.yaml",
            "--trainer.max_steps",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--data.init_args.batch_size",
            "2",
            "--data.init_args.num_workers",
            "0",
            "--model.init_args.encoder_overrides",
            "{img_size: 64, num_frames: 8, depth: 1}",
            "--model.init_args.predictor_overrides",
            "{embed_dim: 48, depth: 1, num_heads: 2}",
        ]
    )
    assert cli.trainer.global_step == 2 and cli.model.ema_updates == 2
    loss = float(cli.trainer.callback_metrics["train/loss"])
    assert math.isfinite(loss) and loss > 0
    assert (tmp_path / "runs" / "pretrain_quickstart").is_dir()


RECIPES = sorted(CONFIG_DIR.glob("*.yaml"))


def test_shipped_recipes_match_the_signatures():
    """Every recipe's init_args are parameters of its classes, with the spec's numbers (cheap, no CLI)."""
    import jepa.data.datamodules as datamodules

    assert {p.stem for p in RECIPES} >= {
        "quickstart",
        "quickstart_swarm",
        "vitl_256_16f",
        "vith_256_16f",
        "vitg_256_16f",
        "vitl_256_cooldown_64f",
        "vith_256_cooldown_64f",
        "vitg_256_cooldown_64f",
        "vitg_384_cooldown_64f",
    }
    task_params = set(inspect.signature(PretrainTask).parameters)
    data_params = set(inspect.signature(datamodules.PretrainDataModule).parameters)
    collator_params = set(inspect.signature(MaskCollator).parameters)
    for path in RECIPES:
        cfg = yaml.safe_load(path.read_text())
        model, data = cfg["model"], cfg["data"]
        assert model["class_path"] == "jepa.tasks.pretrain.PretrainTask", path
        assert set(model["init_args"]) <= task_params, (path, set(model["init_args"]) - task_params)
        assert set(data["init_args"]) <= data_params, (path, set(data["init_args"]) - data_params)
        collator = data["init_args"]["collate_fn"]
        assert collator["class_path"] == "jepa.data.masks.MaskCollator"
        assert set(collator["init_args"]) <= collator_params, path
        fpcs = {s["frames_per_clip"] for s in data["init_args"]["sources"]}
        assert set(collator["init_args"]["dataset_fpcs"]) == fpcs, path
        assert collator["init_args"]["crop_size"] == data["init_args"]["crop_size"], path
        enc = model["init_args"]["encoder_overrides"]
        assert enc["img_size"] == data["init_args"]["crop_size"] and enc["num_frames"] == max(fpcs), path
        if path.stem.startswith("quickstart"):
            continue
        args, trainer = model["init_args"], cfg["trainer"]
        global_batch = trainer["num_nodes"] * trainer["devices"] * data["init_args"]["batch_size"]
        assert global_batch == 3072 and cfg["seed_everything"] == 239, path
        assert args["ema"] == [0.99925, 0.99925] and args["weight_decay"] == args["final_weight_decay"] == 0.04
        assert args["ipe"] == 300 and args["ipe_scale"] == 1.25 and trainer["precision"] == "bf16-mixed"
        if "cooldown" in path.stem:
            assert fpcs == {64} and args["lr_schedule"] == "linear_decay" and args["final_lr"] == 1e-6
            assert args["epochs"] * args["ipe"] == trainer["max_steps"] == 12_000
        else:
            assert fpcs == {16} and args["warmup_epochs"] * args["ipe"] == 12_000
            assert (args["start_lr"], args["lr"], args["final_lr"]) == (1e-4, 5.25e-4, 5.25e-4)


def test_a_shipped_recipe_parses_through_the_cli(capsys):
    from jepa.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "pretrain/vitg_384_cooldown_64f.yaml", "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "jepa.tasks.pretrain.PretrainTask" in printed and "crop_size: 384" in printed
