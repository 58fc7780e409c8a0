"""ProbeTask: heads with different LRs diverge, the best head is chosen by validation accuracy, predict output."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from jepa.encoders import EncoderConfig, VideoViT
from jepa.tasks.probe import ProbeTask


def _batches(count: int, seed: int) -> list[dict]:
    """2 segments × 1 view of (4, 3, 2, 16, 16) clips; the class is which colour channel is bright."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        labels = torch.randint(0, 3, (4,), generator=g)
        clips = []
        for _segment in range(2):
            x = 0.1 * torch.randn(4, 3, 2, 16, 16, generator=g)
            x[torch.arange(4), labels] += 2.0
            clips.append(x)
        batches.append({"clips": clips, "indices": [torch.zeros(4, 2)] * 2, "label": labels})
    return batches


def test_heads_with_different_lrs_diverge_and_best_head_is_selected(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = VideoViT(EncoderConfig(embed_dim=24, depth=1, num_heads=2, img_size=16, num_frames=2))
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"red": 0, "green": 1, "blue": 2}))
    task = ProbeTask(
        num_classes=3, encoder=encoder, pretrained=False, probe_num_heads=4, probe_depth=1, lrs=[1e-9, 3e-3],
        weight_decays=[0.0], class_map=str(classes), predict_top_k=2,
    )  # fmt: skip
    initial = [head.linear.weight.detach().clone() for head in task.sweep.heads]
    encoder_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    train, val = _batches(6, seed=1), _batches(3, seed=2)
    identity = lambda batch: batch[0]  # noqa: E731  (batches are pre-collated)
    trainer.fit(task, DataLoader(train, batch_size=1, collate_fn=identity), DataLoader(val, collate_fn=identity))

    mid = [schedule.lr.value(9) for schedule in task.sweep.schedules]  # cosine over 3 epochs x 6 steps
    assert mid[0] < 1e-8 < 1e-3 < mid[1]
    assert [group["lr"] for group in trainer.optimizers[0].param_groups] == [
        s.lr.value(18) for s in task.sweep.schedules
    ]
    moved = [float((h.linear.weight - w0).abs().max()) for h, w0 in zip(task.sweep.heads, initial, strict=True)]
    assert moved[0] < 1e-6 < 1e-3 < moved[1]
    top1 = [float(trainer.callback_metrics[f"val/top1/head_{i}"]) for i in range(2)]
    assert top1[1] > top1[0] and top1[1] >= 90.0
    assert int(task.best_head) == 1 and float(trainer.callback_metrics["val/best_top1"]) == top1[1]
    for key, value in encoder.state_dict().items():  # frozen encoder untouched
        torch.testing.assert_close(value, encoder_before[key], rtol=0, atol=0)

    predictions = trainer.predict(task, DataLoader(val[:1], collate_fn=identity))
    row = predictions[0]
    assert len(row["top_labels"]) == 4 and len(row["top_labels"][0]) == 2
    assert row["top_labels"][0][0] == ["red", "green", "blue"][row["top_classes"][0][0]]
    assert [r[0] for r in row["top_classes"]] == val[0]["label"].tolist()
    assert all(s[0] >= s[1] for s in row["top_scores"])


def test_stacked_heads_give_the_loop_logits() -> None:
    """`probe_stacked=True` (key/value-free cross-attention) gives the loop's logits per head and view."""
    torch.manual_seed(0)
    encoder = VideoViT(EncoderConfig(embed_dim=24, depth=1, num_heads=2, img_size=16, num_frames=2))
    kwargs = dict(num_classes=3, encoder=encoder, pretrained=False, probe_num_heads=4, probe_depth=1,
                  lrs=[1e-3, 3e-3], weight_decays=[0.0, 0.01])  # fmt: skip
    loop, stacked = ProbeTask(**kwargs), ProbeTask(**kwargs, probe_stacked=True)
    assert stacked.sweep.stacked and not loop.sweep.stacked
    stacked.sweep.load_state_dict(loop.sweep.state_dict())
    views = [torch.randn(2, 8, 24), torch.randn(2, 8, 24)]
    expected, got = loop.head_logits(views), stacked.head_logits(views)
    assert len(got) == 4 and all(len(per_head) == 2 for per_head in got)
    for e_head, g_head in zip(expected, got, strict=True):
        for e, g in zip(e_head, g_head, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
