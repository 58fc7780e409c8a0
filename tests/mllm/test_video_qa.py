"""VideoQATask: staged freezing, training step, generation, checkpoint round trip, `ask`, CLI configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from jepa.mllm.data import VideoQADataModule
from jepa.tasks.video_qa import VideoQATask

sys.path.insert(0, os.path.dirname(__file__))
from motion_qa_helpers import fit_task  # noqa: E402


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


@pytest.mark.parametrize("stage", ["projector", "full", "end_to_end"])
def test_stages_train_only_their_parts(
    stage: str, tiny_task_kwargs: Any, motion_qa: dict[str, str], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    task = VideoQATask(**tiny_task_kwargs(stage=stage))
    data = VideoQADataModule(train=motion_qa["train"], num_frames=8, crop_size=64, batch_size=4)
    encoder, llm, projector = _snapshot(task.encoder), _snapshot(task.llm), _snapshot(task.projector)
    trainer = fit_task(task, data, tmp_path)
    optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert all(id(p) in optimized for p in task.projector.parameters())
    assert _changed(projector, task.projector)
    if stage == "end_to_end":  # the encoder trains too: in the optimizer, in train mode, saved in checkpoints
        assert all(p.requires_grad and id(p) in optimized for p in task.encoder.parameters())
        assert task.encoder.training and _changed(encoder, task.encoder)
        trainer.save_checkpoint(tmp_path / "e2e.ckpt")
        saved = torch.load(tmp_path / "e2e.ckpt", weights_only=True)["state_dict"]
        assert {f"encoder.{k}" for k in task.encoder.state_dict()} <= set(saved)
    else:
        assert not any(p.requires_grad for p in task.encoder.parameters())
        assert not task.encoder.training  # frozen parts stay in eval mode during fit
        assert not any(id(p) in optimized for p in task.encoder.parameters())
        assert not _changed(encoder, task.encoder)
    if stage == "projector":
        assert not any(p.requires_grad for p in task.llm.parameters()) and not task.llm.training
        assert not any(id(p) in optimized for p in task.llm.parameters())
        assert not _changed(llm, task.llm)
        assert "train/answer_acc" in trainer.callback_metrics
    else:
        assert all(id(p) in optimized for p in task.llm.parameters())
        assert _changed(llm, task.llm)


def test_generation_scoring_and_checkpoint_round_trip(
    tiny_task_kwargs: Any, motion_qa: dict[str, str], tmp_path: Path
) -> None:
    from jepa.mllm.commands import ask, load_video_qa
    from jepa.mllm.data import read_qa_jsonl

    torch.manual_seed(0)
    task = VideoQATask(**tiny_task_kwargs(stage="full", max_new_tokens=4))
    data = VideoQADataModule(train=motion_qa["train"], val=motion_qa["val"], num_frames=8, crop_size=64, batch_size=4)
    trainer = fit_task(task, data, tmp_path)
    path = tmp_path / "head.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["state_dict"]
    # a random-init frozen encoder cannot be rebuilt from a source, so it is saved with the head
    assert any(k.startswith("encoder.") for k in saved) and any(k.startswith("projector.") for k in saved)

    task.eval()
    batch = next(iter(data.val_dataloader()))
    visual = task.encode_video(batch["video"])
    assert visual.shape == (4, 16, 32)  # 64 encoder tokens / 4
    texts = task.generate(visual, ["Which way does the object move?"] * 4)
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)
    scores = task.option_logprobs(visual, batch["question"], batch["options"])
    assert scores.shape == (4, 4) and torch.isfinite(scores).all()
    assert (scores <= 0).all()

    loaded = load_video_qa(path)
    assert not loaded.training
    torch.testing.assert_close(loaded.option_logprobs(loaded.encode_video(batch["video"]), batch["question"],
                                                      batch["options"]), scores)  # fmt: skip
    record = read_qa_jsonl(motion_qa["val"])[0]
    answer = ask(record["media"], record["question"], str(path), options=record["options"], max_new_tokens=4)
    assert answer == loaded.answer(batch["video"][0], record["question"], record["options"])


def test_init_from_rejects_a_foreign_checkpoint(tiny_task_kwargs: Any, tmp_path: Path) -> None:
    torch.save({"state_dict": {"head.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="no 'projector"):
        VideoQATask(**tiny_task_kwargs(init_from=str(tmp_path / "other.ckpt")))
    with pytest.raises(ValueError, match="lora"):
        VideoQATask(**tiny_task_kwargs(stage="projector", lora={"r": 4}))


def test_cli_fit_then_validate_tiny_config(motion_qa: dict[str, str], tmp_path: Path) -> None:
    from jepa.cli import main

    common = [
        "--config", "mllm/tiny_cpu.yaml",
        "--data.init_args.train", motion_qa["train"],
        "--data.init_args.val", motion_qa["val"],
        "--data.init_args.batch_size", "4",
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    cli = main(["fit", *common, "--trainer.max_steps", "2", "--trainer.num_sanity_val_steps", "0"])
    assert cli.model.projector_kind == "mlp" and cli.model.stage == "full" and cli.trainer.global_step == 2
    checkpoint = tmp_path / "fit.ckpt"
    cli.trainer.save_checkpoint(checkpoint)
    cli = main(["validate", *common, "--ckpt_path", str(checkpoint)])
    accuracy = float(cli.trainer.callback_metrics["val/accuracy"])
    assert 0.0 <= accuracy <= 1.0


@pytest.mark.parametrize("name", ["mllm/qwen2_7b_vitg384_stage1.yaml", "mllm/qwen2_7b_vitg384_stage3.yaml"])
def test_big_configs_parse_without_downloading(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from jepa.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", name, "--print_config"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "llm: Qwen/Qwen2-7B-Instruct" in out and "num_frames: 128" in out and "pooling_factor: 4" in out
    assert "class_path: jepa.tasks.video_qa.VideoQATask" in out


def test_projector_stage_checkpoints_the_frozen_llm(tiny_task_kwargs: Any) -> None:
    """Stage 1 with gradient checkpointing: the frozen LLM's layers re-run in backward, dropout stays off, and the
    projector gradients equal those without checkpointing."""
    video = torch.randn(2, 3, 8, 64, 64, generator=torch.Generator().manual_seed(0))
    conversation = [{"from": "human", "value": "<video>\nWhich way?"}, {"from": "gpt", "value": "left"}]
    grads, calls = [], []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        task = VideoQATask(**tiny_task_kwargs(stage="projector", gradient_checkpointing=checkpointing))
        runs: list[int] = []
        task.llm.model.layers[0].mlp.register_forward_pre_hook(lambda *_, runs=runs: runs.append(1))
        task.train()
        assert not any(p.requires_grad for p in task.llm.parameters())
        assert not any(m.training for m in task.llm.modules() if isinstance(m, torch.nn.Dropout))
        assert not task.llm.model.layers[0].self_attn.training  # attention dropout off
        fused = task.fuse(task.encode_video(video), [conversation] * 2)
        loss, _ = task.answer_loss(task._lm_logits(fused), fused.labels)
        loss.backward()
        grads.append({n: p.grad for n, p in task.projector.named_parameters()})
        calls.append(len(runs))
        task.eval()
        assert not any(m.training for m in task.llm.modules())
    assert calls == [1, 2]  # checkpointed: the layer runs again in backward
    for name, grad in grads[1].items():
        assert grad is not None, name
        torch.testing.assert_close(grad, grads[0][name], rtol=1e-4, atol=1e-6)
