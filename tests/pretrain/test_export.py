"""`jepa.export.export`: a Lightning pretraining checkpoint → jepa / official / transformers layouts; and continuing
a run from an official-layout file (`anneal_from`, the recipe of `continue_from_vitl_cooldown_64f.yaml`)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

import jepa
from jepa.data.masks import MaskCollator
from jepa.encoders import VideoViT
from jepa.export import export
from jepa.tasks.pretrain import PretrainTask, read_pretrain_checkpoint

ARCH = dict(
    encoder="vit_tiny",
    encoder_overrides={"img_size": 64, "num_frames": 4, "depth": 1},
    predictor_overrides={"embed_dim": 48, "depth": 1, "num_heads": 2, "num_mask_tokens": 2},
    ipe=5,
    epochs=2,
    warmup_epochs=0,
    ema=(0.5, 0.5),  # a visible EMA step: target encoder != context encoder after training
)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    task = PretrainTask(**ARCH)
    collator = MaskCollator(dataset_fpcs=[4], crop_size=64)
    batches = [collator([{"clips": [torch.randn(3, 4, 64, 64)], "fpc": 4} for _ in range(2)]) for _ in range(2)]
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(task, train_dataloaders=DataLoader(batches, batch_size=1, collate_fn=lambda items: items[0]))
    path = tmp_path_factory.mktemp("export") / "last.ckpt"
    trainer.save_checkpoint(path)
    return path, task


def _equal(module, state):
    own = module.state_dict()
    assert own.keys() == state.keys()
    for key, value in own.items():
        assert torch.equal(value, state[key]), key


def test_export_jepa_loads_with_load_pretrained_and_from_pretrained(ckpt, tmp_path):
    path, task = ckpt
    assert not torch.equal(task.encoder.blocks[0].attn.qkv.weight, task.target_encoder.blocks[0].attn.qkv.weight)
    out = export(str(path), str(tmp_path / "jepa"))
    loaded = jepa.load_pretrained(out)
    _equal(loaded.encoder, task.target_encoder.state_dict())
    _equal(loaded.predictor, task.predictor.state_dict())
    video = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(VideoViT.from_pretrained(out)(video), task.target_encoder.eval()(video))
    context = jepa.load_pretrained(export(str(path), str(tmp_path / "ctx"), which="encoder"))
    _equal(context.encoder, task.encoder.state_dict())


def test_export_official_keeps_both_encoders_and_continues_training(ckpt, tmp_path):
    path, task = ckpt
    official = export(str(path), str(tmp_path / "official"), to="official")
    raw = torch.load(official, map_location="cpu", weights_only=True)
    assert {"encoder", "target_encoder", "predictor", "epoch"} <= set(raw)
    assert all(k.startswith("module.backbone.") for k in raw["encoder"])
    _equal(jepa.load_pretrained(official).encoder, task.target_encoder.state_dict())  # default key: target encoder

    # continue (cooldown) from the official-layout file: all three modules are loaded, strictly
    cool = PretrainTask(**{**ARCH, "lr_schedule": "linear_decay", "final_lr": 1e-6}, anneal_from=str(official))
    for name in ("encoder", "target_encoder", "predictor"):
        _equal(getattr(cool, name), getattr(task, name).state_dict())
    states, optimizer = read_pretrain_checkpoint(str(official))
    assert optimizer is None and set(states) == {"encoder", "predictor", "target_encoder"}


def test_export_hf_round_trips(ckpt, tmp_path):
    path, task = ckpt
    out = export(str(path), str(tmp_path / "hf"), to="hf")
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    loaded = jepa.load_pretrained(out)
    _equal(loaded.encoder, task.target_encoder.state_dict())
    _equal(loaded.predictor, task.predictor.state_dict())


def test_export_rejects_other_checkpoints(tmp_path):
    bad = tmp_path / "bad.ckpt"
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(KeyError, match="expected a Lightning checkpoint"):
        export(str(bad), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="to must be"):
        export(str(bad), str(tmp_path / "out"), to="onnx")
