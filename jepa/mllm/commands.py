"""``jepa ask``: answer a question about a video with a trained :class:`jepa.tasks.video_qa.VideoQATask` head."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["ask", "load_video_qa", "save_video_qa"]


def load_video_qa(checkpoint: str | os.PathLike[str], device: str = "cpu") -> Any:
    """Rebuild a ``VideoQATask`` from a Lightning checkpoint (``weights_only=True``), in eval mode on ``device``.

    The task is constructed from the checkpoint's ``hyper_parameters`` (so the encoder / LLM sources it names must be
    reachable; frozen parts not saved are rebuilt from them), then its ``state_dict`` is loaded.
    """
    from jepa.tasks.video_qa import VideoQATask

    state = torch.load(os.fspath(checkpoint), map_location="cpu", weights_only=True)
    if "hyper_parameters" not in state or "state_dict" not in state:
        raise ValueError(
            f"{checkpoint}: expected a Lightning checkpoint of VideoQATask with 'hyper_parameters' and "
            f"'state_dict', got keys {sorted(state)[:10]}"
        )
    # LightningCLI adds its own entries (`_class_path`, `_instantiator`); they are not task arguments
    hparams = {key: value for key, value in state["hyper_parameters"].items() if not key.startswith("_")}
    hparams["init_from"] = None  # the checkpoint's own weights replace any starting point
    task = VideoQATask(**hparams)
    task.load_state_dict(state["state_dict"])
    return task.to(device).eval()


def save_video_qa(task: Any, path: str | os.PathLike[str]) -> None:
    """Write a ``VideoQATask`` head for :func:`load_video_qa` / ``jepa ask``: ``hyper_parameters`` + ``state_dict``.

    The same two keys as a Lightning checkpoint (no optimizer state), loadable with ``weights_only=True``. What the
    state holds follows :meth:`VideoQATask.state_dict`: frozen parts rebuilt from their source (a pretrained
    encoder, a Hub LLM's base weights under LoRA) are left out; after :meth:`VideoQATask.merge_lora` the merged LLM is
    saved whole and loads without ``peft``.
    """
    hparams = {key: value for key, value in task.hparams.items() if not key.startswith("_")}
    hparams["init_from"] = None  # the saved weights replace any starting point
    torch.save({"hyper_parameters": hparams, "state_dict": task.state_dict()}, os.fspath(path))


def ask(
    video: str,
    question: str,
    checkpoint: str,
    options: Sequence[str] | None = None,
    num_frames: int | None = None,
    max_new_tokens: int = 32,
    device: str = "cpu",
) -> str:
    """Answer a question about a video (or image) with a trained video-QA head, and print the answer.

    Args:
        video: path of a video (or image, repeated as a static clip).
        question: the question, e.g. "Which way does the object move?".
        checkpoint: a `jepa fit` checkpoint (.ckpt) of jepa.tasks.video_qa.VideoQATask.
        options: multiple-choice options; when given they are listed (A), (B), ... and the model answers a letter.
        num_frames: frames sampled uniformly over the video (default: the number the head was trained with).
        max_new_tokens: longest answer in tokens.
        device: torch device, e.g. "cpu" or "cuda".

    Returns:
        The generated answer text.
    """
    from jepa.mllm.data import load_video_frames

    task = load_video_qa(checkpoint, device)
    frames = load_video_frames(video, num_frames or task.num_frames, task.crop_size)  # (3, T, crop, crop)
    task.max_new_tokens = max_new_tokens
    answer = task.answer(frames, question, list(options) if options else None)
    print(answer)
    return answer
