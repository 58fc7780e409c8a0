"""LoRA on the video-QA head's LLM: what trains, checkpoints, merging, checkpointing, staged training via the CLI."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from jepa.mllm.data import VideoQADataModule
from jepa.tasks.video_qa import VideoQATask

sys.path.insert(0, os.path.dirname(__file__))
from motion_qa_helpers import TINY_LLAMA, CachedTokens, fit_task, motion_qa_tokens, train_and_score_motion_qa  # noqa: E402

needs_peft = pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="peft is not installed")

LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}
CONVERSATION = [
    {"from": "human", "value": "<video>\nWhich way does the object move?"},
    {"from": "gpt", "value": "left"},
]


def _logits(task: VideoQATask, video: torch.Tensor) -> torch.Tensor:
    """Teacher-forced LLM logits ``(B, L, V)`` of a fixed conversation about ``video`` (eval mode, no grad)."""
    task.eval()
    with torch.no_grad():
        fused = task.fuse(task.encode_video(video), [CONVERSATION] * video.shape[0])
        return task._lm_logits(fused)


def _llm_base(task: VideoQATask) -> dict[str, torch.Tensor]:
    """The LLM's frozen base weights (everything but the adapters)."""
    return {k: v.detach().clone() for k, v in task.llm.state_dict().items() if "lora_" not in k}


def _video(seed: int = 0, batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 8, 64, 64, generator=generator)


@needs_peft
def test_lora_trains_only_adapters_and_projector(
    tiny_task_kwargs: Any, motion_qa: dict[str, str], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    task = VideoQATask(**tiny_task_kwargs(stage="full", lora=LORA, weight_decay=0.1))
    base, encoder = _llm_base(task), {k: v.clone() for k, v in task.encoder.state_dict().items()}
    adapters = {n: p.detach().clone() for n, p in task.llm.named_parameters() if "lora_" in n}
    projector = {n: p.detach().clone() for n, p in task.projector.named_parameters()}
    assert len(adapters) == 2 * 2 * 2  # 2 layers × (q, v) × (A, B)
    data = VideoQADataModule(train=motion_qa["train"], num_frames=8, crop_size=64, batch_size=4)
    trainer = fit_task(task, data, tmp_path, steps=3)

    optimized = [p for group in trainer.optimizers[0].param_groups for p in group["params"]]
    trainable = [p for p in task.parameters() if p.requires_grad]
    assert {id(p) for p in optimized} == {id(p) for p in trainable} and len(optimized) == len(trainable)
    expected = {f"llm.{n}" for n in adapters} | {f"projector.{n}" for n in projector}
    assert {n for n, p in task.named_parameters() if p.requires_grad} == expected
    # base LLM and encoder bit-identical after AdamW steps with weight decay; adapters and projector moved
    after = _llm_base(task)
    assert after.keys() == base.keys() and all(torch.equal(base[k], after[k]) for k in base)
    assert all(torch.equal(v, task.encoder.state_dict()[k]) for k, v in encoder.items())
    moved = {n: not torch.equal(v, dict(task.llm.named_parameters())[n]) for n, v in adapters.items()}
    assert all(moved.values()), moved  # lora_B leaves 0 at step 1, lora_A follows from step 2
    assert all(not torch.equal(v, dict(task.projector.named_parameters())[n]) for n, v in projector.items())
    assert task.llm.training and not task.encoder.training


@needs_peft
def test_lora_end_to_end_trains_encoder_adapters_and_projector(
    tiny_task_kwargs: Any, motion_qa: dict[str, str], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    task = VideoQATask(**tiny_task_kwargs(stage="end_to_end", lora=LORA))
    base, encoder = _llm_base(task), {k: v.clone() for k, v in task.encoder.state_dict().items()}
    data = VideoQADataModule(train=motion_qa["train"], num_frames=8, crop_size=64, batch_size=4)
    trainer = fit_task(task, data, tmp_path, steps=2)

    optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    trainable = {n for n, p in task.named_parameters() if p.requires_grad}
    assert {n for n, p in task.named_parameters() if id(p) in optimized} == trainable
    assert {n.split(".")[0] for n in trainable} == {"encoder", "projector", "llm"}
    assert all("lora_" in n for n in trainable if n.startswith("llm."))  # LLM: adapters only
    assert all(f"encoder.{n}" in trainable for n, _ in task.encoder.named_parameters())
    after = _llm_base(task)
    assert all(torch.equal(base[k], after[k]) for k in base)  # base LLM frozen
    assert any(not torch.equal(v, task.encoder.state_dict()[k]) for k, v in encoder.items())  # encoder trained
    assert task.encoder.training


@needs_peft
def test_lora_checkpoint_round_trip_ask_and_merge(
    tiny_task_kwargs: Any, motion_qa: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jepa.mllm.commands import ask, load_video_qa, save_video_qa
    from jepa.mllm.data import read_qa_jsonl

    torch.manual_seed(0)
    task = VideoQATask(**tiny_task_kwargs(stage="full", lora=LORA, max_new_tokens=3))
    data = VideoQADataModule(train=motion_qa["train"], num_frames=8, crop_size=64, batch_size=4)
    trainer = fit_task(task, data, tmp_path, steps=2)
    path = tmp_path / "lora.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["state_dict"]
    lora_keys = {k for k in saved if "lora_" in k}
    assert len(lora_keys) == 8 and all(torch.equal(saved[k], task.state_dict()[k]) for k in lora_keys)
    assert any(k.endswith("q_proj.base_layer.weight") for k in saved)  # a random LM cannot be rebuilt: kept

    video = _video()
    reference = _logits(task, video)
    loaded = load_video_qa(path)
    assert type(loaded.llm).__name__ == "PeftModelForCausalLM"
    assert torch.equal(_logits(loaded, video), reference)
    record = read_qa_jsonl(motion_qa["val"])[0]
    answer = ask(record["media"], record["question"], str(path), options=record["options"], max_new_tokens=3)
    assert isinstance(answer, str)

    # merging folds B·A into the base weights: same logits, a plain LM, and a head that loads without peft
    q_before = task.llm.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight.detach().clone()
    task.merge_lora()
    assert task.lora is None and type(task.llm).__name__ == "LlamaForCausalLM"
    assert not any("lora_" in n for n, _ in task.named_parameters())
    assert not torch.equal(task.llm.model.layers[0].self_attn.q_proj.weight, q_before)
    merged = _logits(task, video)
    torch.testing.assert_close(merged, reference, rtol=1e-5, atol=1e-5)
    save_video_qa(task, tmp_path / "merged.pt")
    monkeypatch.setitem(sys.modules, "peft", None)
    plain = load_video_qa(tmp_path / "merged.pt")
    assert plain.lora is None and torch.equal(_logits(plain, video), merged)
    with pytest.raises(ValueError, match="LoRA adapter weights"):  # adapters into a task without `lora`
        VideoQATask(**tiny_task_kwargs(stage="full", init_from=str(path)))


@needs_peft
def test_lora_on_a_rebuildable_llm_saves_only_adapters(tiny_task_kwargs: Any, llm_config: dict[str, Any],
                                                      tmp_path: Path) -> None:  # fmt: skip
    from transformers import AutoConfig, AutoModelForCausalLM

    from jepa.mllm.commands import load_video_qa, save_video_qa
    from jepa.tasks.video_qa import build_tokenizer

    torch.manual_seed(0)
    fields = dict(llm_config)
    vocab = len(build_tokenizer("builtin:words"))
    config = AutoConfig.for_model(fields.pop("model_type"), vocab_size=vocab, **fields)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "lm")  # a local "Hub" LLM
    kwargs = tiny_task_kwargs(stage="full", lora=LORA, llm=str(tmp_path / "lm"), projector="mlp")
    del kwargs["llm_config"]
    task = VideoQATask(**kwargs)
    for name, parameter in task.llm.named_parameters():
        if "lora_B" in name:  # as after training: B ≠ 0, so the adapters change the logits
            torch.nn.init.normal_(parameter, std=0.5)
    state = task.state_dict()
    llm_keys = {k for k in state if k.startswith("llm.")}
    assert len(llm_keys) == 8 and all("lora_" in k for k in llm_keys)
    save_video_qa(task, tmp_path / "head.pt")
    video = _video()
    loaded = load_video_qa(tmp_path / "head.pt")  # base weights rebuilt from the directory, adapters loaded
    assert torch.equal(_logits(loaded, video), _logits(task, video))
    del state[next(iter(llm_keys))]
    with pytest.raises(RuntimeError, match="missing keys"):
        loaded.load_state_dict(state)


@needs_peft
def test_gradient_checkpointing_with_lora(tiny_task_kwargs: Any) -> None:
    video = _video()
    grads, calls = [], []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        task = VideoQATask(**tiny_task_kwargs(stage="full", lora=LORA, gradient_checkpointing=checkpointing))
        for name, parameter in task.llm.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.5)
        runs: list[int] = []
        layer = task.llm.get_base_model().model.layers[0]
        layer.mlp.register_forward_pre_hook(lambda *_, runs=runs: runs.append(1))
        task.train()
        fused = task.fuse(task.encode_video(video), [CONVERSATION] * 2)
        # the LLM input does not require grad here: the case that breaks reentrant checkpointing
        fused.inputs_embeds = fused.inputs_embeds.detach()
        loss, _ = task.answer_loss(task._lm_logits(fused), fused.labels)
        loss.backward()
        grads.append({n: p.grad for n, p in task.llm.named_parameters() if p.requires_grad})
        calls.append(len(runs))
    assert calls == [1, 2]  # the checkpointed layer runs again in backward
    assert grads[0].keys() == grads[1].keys() and len(grads[1]) == 8
    for name, grad in grads[1].items():
        assert grad is not None and grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, grads[0][name], rtol=1e-4, atol=1e-6)


@needs_peft
def test_unknown_lora_field_is_a_clear_error(tiny_task_kwargs: Any) -> None:
    with pytest.raises(ValueError, match="invalid `lora` fields.*rank_typo"):
        VideoQATask(**tiny_task_kwargs(stage="full", lora={"r": 4, "rank_typo": 2}))


def test_lora_without_peft_is_a_clear_error(tiny_task_kwargs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # as if peft were not installed
    with pytest.raises(ImportError, match=r"`lora` needs the `peft` package.*pip install"):
        VideoQATask(**tiny_task_kwargs(stage="full", lora=LORA))


@needs_peft
def test_lora_stage_starts_from_the_plain_stage1_model(tiny_task_kwargs: Any, tmp_path: Path) -> None:
    torch.manual_seed(0)
    stage1 = VideoQATask(**tiny_task_kwargs(stage="projector"))
    torch.save({"state_dict": stage1.state_dict()}, tmp_path / "stage1.ckpt")
    lora = {"r": 4, "target_modules": ["q_proj", "lm_head"], "modules_to_save": ["embed_tokens"]}
    torch.manual_seed(1)  # another random init: everything must come from the checkpoint
    stage2 = VideoQATask(**tiny_task_kwargs(stage="full", lora=lora, init_from=str(tmp_path / "stage1.ckpt")))
    state = stage2.state_dict()
    embed = stage1.llm.model.embed_tokens.weight
    copies = [k for k in state if "embed_tokens" in k]  # frozen original + trainable copy
    assert len(copies) == 2 and all(torch.equal(state[k], embed) for k in copies)
    assert torch.equal(state["llm.base_model.model.lm_head.base_layer.weight"], stage1.llm.lm_head.weight)
    video = _video()
    assert torch.equal(_logits(stage2, video), _logits(stage1, video))  # lora_B = 0: the same model at the start


@needs_peft
def test_staged_cli_projector_then_lora(motion_qa: dict[str, str], tmp_path: Path) -> None:
    from jepa.cli import main
    from jepa.mllm.commands import load_video_qa

    common = [
        "--data.init_args.train", motion_qa["train"],
        "--data.init_args.val", motion_qa["val"],
        "--data.init_args.batch_size", "4",
        "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.num_sanity_val_steps", "0",
        "--trainer.max_steps", "2",
    ]  # fmt: skip
    stage1 = main(["fit", "--config", "mllm/tiny_cpu.yaml", *common, "--model.init_args.stage", "projector",
                   "--trainer.default_root_dir", str(tmp_path / "s1")])  # fmt: skip
    first = tmp_path / "s1" / "checkpoints" / "last.ckpt"
    assert stage1.model.stage == "projector" and first.is_file()
    stage1_state = torch.load(first, weights_only=True)["state_dict"]

    stage2 = main(["fit", "--config", "mllm/tiny_cpu_lora.yaml", *common, "--model.init_args.init_from", str(first),
                   "--trainer.default_root_dir", str(tmp_path / "s2")])  # fmt: skip
    task = stage2.model
    assert task.lora is not None and task.gradient_checkpointing and stage2.trainer.global_step == 2
    trainable = {n.split(".")[0] for n, p in task.named_parameters() if p.requires_grad}
    assert trainable == {"projector", "llm"}
    assert all("lora_" in n for n, p in task.llm.named_parameters() if p.requires_grad)
    # stage 2 (another seed) took its LM from the stage-1 checkpoint, and the LM's base stayed frozen
    q = task.llm.get_base_model().model.layers[1].self_attn.q_proj.base_layer.weight
    assert torch.equal(q, stage1_state["llm.model.layers.1.self_attn.q_proj.weight"])
    second = tmp_path / "s2" / "checkpoints" / "last.ckpt"
    video = _video()
    assert torch.equal(_logits(load_video_qa(second), video), _logits(task, video))


@needs_peft
@pytest.mark.slow
def test_lora_adapters_align_motion_qa(tmp_path: Path) -> None:
    """LoRA variant of test_alignment.py (docs/mllm.md: 71.9 % after 1000 steps); LM frozen, adapters + projector."""
    train, val = motion_qa_tokens(tmp_path)
    torch.manual_seed(0)
    linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]
    lora = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": linear}
    task = VideoQATask(encoder=CachedTokens(), llm_config=TINY_LLAMA, tokenizer="builtin:words", projector="mlp",
                       num_frames=8, crop_size=64, stage="full", lora=lora)  # fmt: skip
    base = _llm_base(task)
    accuracy = train_and_score_motion_qa(task, train, val, steps=1000)
    assert all(torch.equal(v, _llm_base(task)[k]) for k, v in base.items())  # only the adapters learned
    assert accuracy >= 0.40, f"val accuracy {accuracy:.3f}; chance is 0.25"
