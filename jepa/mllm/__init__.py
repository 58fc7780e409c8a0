"""MLLM alignment head (optional extra ``mllm``): V-JEPA 2 video tokens → projector → Hugging Face causal LM.

Not imported by ``jepa/__init__.py``; ``transformers`` is imported only inside the functions that need it.
Modules: :mod:`~jepa.mllm.projector` (attentive / MLP projectors), :mod:`~jepa.mllm.fusion` (conversation
tokenization, answer-only labels, visual-token splicing), :mod:`~jepa.mllm.data` (JSONL / shard data, synthetic
motion QA), :mod:`~jepa.mllm.evaluation` (multiple-choice prompts, parsing, log-likelihood scoring),
:mod:`~jepa.mllm.commands` (``ask``). The LightningModule is :class:`jepa.tasks.video_qa.VideoQATask`.
"""

from jepa.mllm.projector import AttentiveProjector, MLPProjector, build_projector

__all__ = ["AttentiveProjector", "MLPProjector", "build_projector"]
