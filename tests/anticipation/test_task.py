"""AnticipationTask: future-slot token ids, feature modes, evaluation of a released-layout probe file, predict."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from jepa.data.ek100 import AnticipationVideosDataModule, EK100DataModule
from jepa.metrics import MeanClassRecall
from jepa.probes.anticipation import AnticipationProbe, infer_anticipation_probe_config
from jepa.probes.layouts import official_probe_state_dict, save_official_probe
from jepa.tasks.anticipation import AnticipationTask, mapping_path_for

TINY_ENCODER = {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 32, "num_frames": 8}
TINY_PREDICTOR = {"embed_dim": 32, "depth": 1, "num_heads": 2}


class SpyPredictor(nn.Module):
    """Records the ids it is called with and returns the context mean at every target."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor, int]] = []

    def forward(self, x, masks_x, masks_y, mask_index=1, grid=None):
        self.calls.append((masks_x.clone(), masks_y.clone(), mask_index))
        return x.mean(1, keepdim=True).expand(-1, masks_y.shape[1], -1)


def tiny_task(**kwargs) -> AnticipationTask:
    defaults = dict(
        encoder="vit_tiny", pretrained=False, encoder_overrides=TINY_ENCODER, predictor_overrides=TINY_PREDICTOR,
        probe_depth=1, probe_num_heads=2, lrs=[1e-3], weight_decays=[1e-4, 1e-2],
    )  # fmt: skip
    defaults.update(kwargs)
    return AnticipationTask(**defaults)


def test_future_slot_ids_and_feature_modes() -> None:
    torch.manual_seed(0)
    spy = SpyPredictor()
    task = tiny_task(predictor=spy, num_verbs=3, num_nouns=2, num_actions=4)
    video = torch.randn(3, 3, 8, 32, 32)  # 8 frames → 4 slots of 2 x 2 tokens: N = 16
    at = torch.tensor([1.0, 1.75, 0.25])  # steps int(at · 8 / 2) = 4, 7, 1
    tokens = task.features(video, at)
    assert tokens.shape == (3, 16 + 4, 32)
    ctx, tgt, mask_index = spy.calls[-1]
    assert mask_index == 1 and torch.equal(ctx, torch.arange(16).expand(3, 16))
    expected = torch.stack([16 + 4 * s + torch.arange(4) for s in (4, 7, 1)])  # slot 4 + steps
    assert torch.equal(tgt, expected)
    task.features_mode = "encoder"
    assert task.features(video, at).shape == (3, 16, 32)
    task.features_mode = "predictor"
    assert task.features(video, at).shape == (3, 4, 32)


def test_real_predictor_and_training_step_gradients() -> None:
    torch.manual_seed(0)
    task = tiny_task(num_verbs=3, num_nouns=2, num_actions=4)
    assert task.predictor.config.num_frames == 64 and task.predictor.config.encoder_dim == 32
    batch = {
        "video": torch.randn(2, 3, 8, 32, 32), "anticipation_time": torch.tensor([1.0, 1.75]),
        "verb": torch.tensor([0, 2]), "noun": torch.tensor([1, 0]), "action": torch.tensor([3, 0]),
    }  # fmt: skip
    tokens = task.features(batch["video"], batch["anticipation_time"])
    loss = task.head_loss(task.sweep.heads[0](tokens), batch)
    loss.backward()
    assert all(p.grad is None for p in task.encoder.parameters()) and all(
        p.grad is None for p in task.predictor.parameters()
    )
    assert task.sweep.heads[0].action_classifier.weight.grad.abs().sum() > 0


def test_validate_released_probe_file_matches_hand_metric(tiny_anticipation, tmp_path: Path) -> None:
    torch.manual_seed(0)
    dm = EK100DataModule(
        train=tiny_anticipation.train, val=tiny_anticipation.val, frames_per_clip=8, crop_size=32, batch_size=2,
        anchoring="standard",
    )  # fmt: skip
    m = dm.class_mapping
    # A "released" probe: official layout, `classifiers` list with `module.` keys, two classifiers.
    probes = [AnticipationProbe(32, m.num_verbs, m.num_nouns, m.num_actions, num_heads=2, depth=1) for _ in range(2)]
    path = save_official_probe(tmp_path / "ek100-tiny.pt", [p.state_dict() for p in probes])
    raw = torch.load(path, weights_only=True)
    assert any(k == "module.verb_classifier.weight" for k in raw["classifiers"][0])
    config = infer_anticipation_probe_config(official_probe_state_dict(raw, 0), num_heads=2)
    assert (config.num_actions, config.depth) == (m.num_actions, 1)

    task = tiny_task(probe_checkpoint=str(path), lrs=[0.0], weight_decays=[0.0])
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, precision="32-true")
    trainer.validate(task, dm)
    # Hand computation: every val segment once, head 0 = classifiers[0].
    expected = MeanClassRecall(m.num_actions, k=5)
    for batch in dm.val_dataloader():
        with torch.no_grad():
            logits = probes[0](task.features(batch["video"], batch["anticipation_time"]))
        expected.update(logits["action"], batch["action"])
    got = trainer.callback_metrics["val/action_recall5"].item()
    assert got == pytest.approx(expected.compute()["recall"].item(), abs=1e-4)
    assert int(expected.tp.sum() + expected.fn.sum()) == len(dm.datasets["val"])

    # predict: video + time point → top-5 actions with verb / noun names.
    task.class_mapping = m
    video = str(Path(tiny_anticipation.root) / "val" / "video_00000.mp4")
    pdm = AnticipationVideosDataModule([video, video], [2.0, 4.0], frames_per_clip=8, crop_size=32, batch_size=2)
    out = trainer.predict(task, pdm)[0]
    assert out["time"] == [2.0, 4.0] and len(out["top_actions"][0]) == min(5, m.num_actions)
    names = set(m.verb_names.values())
    assert all(a.split(" ")[0] in names for a in out["top_actions"][0])
    assert out["top_verbs"][0][0] in names


def test_mapping_path() -> None:
    assert mapping_path_for("/x/probe.pt") == Path("/x/probe.classes.json")


def test_stacked_heads_give_the_loop_logits() -> None:
    """`probe_stacked=True` gives the loop's verb / noun / action logits for every head."""
    torch.manual_seed(0)
    loop = tiny_task(num_verbs=3, num_nouns=2, num_actions=4)
    stacked = tiny_task(num_verbs=3, num_nouns=2, num_actions=4, probe_stacked=True)
    stacked.sweep.load_state_dict(loop.sweep.state_dict())
    tokens = torch.randn(2, 16, loop.sweep.heads[0].pooler.embed_dim)
    expected, got = loop.heads_forward(tokens), stacked.heads_forward(tokens)
    assert len(got) == len(expected) == 2
    for e, g in zip(expected, got, strict=True):
        assert g.keys() == e.keys() == {"verb", "noun", "action"}
        for name in e:
            torch.testing.assert_close(g[name], e[name], rtol=1e-5, atol=1e-5)
