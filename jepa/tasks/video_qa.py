"""Video question answering: a V-JEPA 2 encoder aligned with a Hugging Face causal LM (LLaVA-style early fusion).

Spec: mllm.md (§1 architecture, §3 staged training). ``transformers`` is an optional extra (``mllm``); it is imported
when the task is built, never at module import.

Batches come from :class:`jepa.mllm.data.VideoQADataModule`: ``video`` ``(B, 3, T, H, W)``, ``conversations``
(LLaVA turns per sample) and, for multiple-choice sets, ``question`` / ``options`` / ``answer`` ``(B,)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from jepa.mllm.evaluation import ScoreMode, answer_logprobs, mc_prompt, parse_choice
from jepa.mllm.fusion import IGNORE_INDEX, encode_conversation, encode_prompt, splice_visual
from jepa.mllm.lora import adapt_plain_state, apply_lora, base_weight_keys, has_lora_keys, lora_config, merge_lora
from jepa.mllm.projector import ProjectorKind, build_projector
from jepa.tasks.base import BaseTask, EncoderSpec, build_encoder, freeze

Stage = Literal["projector", "full", "end_to_end"]
Schedule = Literal["cosine", "constant"]

BUILTIN_TOKENIZER_PREFIX = "builtin:"
# Vocabulary of the builtin word tokenizer: enough for the synthetic motion QA and simple captions.
BUILTIN_WORDS_TEXT = (
    "which way does the object move left right up down cw ccw clockwise counterclockwise rotate still slow fast "
    "front behind answer with option ' s letter from given choices directly a b c d e f what is in this video it "
    "moves to yes no"
)


def build_tokenizer(spec: str) -> Any:
    """A tokenizer from a Hub id / local directory, or ``"builtin:words"`` (a local word-level tokenizer)."""
    if spec.startswith(BUILTIN_TOKENIZER_PREFIX):
        from jepa.mllm.fusion import build_word_tokenizer

        name = spec[len(BUILTIN_TOKENIZER_PREFIX) :]
        if name != "words":
            raise ValueError(f"tokenizer {spec!r}: the only builtin tokenizer is 'builtin:words'")
        return build_word_tokenizer(BUILTIN_WORDS_TEXT.split())
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec)


def build_llm(llm: str | None, llm_config: dict[str, Any] | None, dtype: str, vocab_size: int) -> nn.Module:
    """A causal LM: ``from_pretrained(llm)`` or randomly initialised from ``llm_config`` (``model_type`` + fields).

    ``vocab_size`` (the tokenizer's length) fills ``llm_config`` when it has none.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype)
    if llm_config is not None:
        fields = dict(llm_config)
        model_type = fields.pop("model_type", None)
        if model_type is None:
            raise ValueError("VideoQATask: llm_config needs a 'model_type' (e.g. 'llama', 'qwen2')")
        fields.setdefault("vocab_size", vocab_size)
        config = AutoConfig.for_model(model_type, **fields)
        return AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    if llm is None:
        raise ValueError("VideoQATask: give `llm` (Hub id or directory) or `llm_config` (random init)")
    return AutoModelForCausalLM.from_pretrained(llm, dtype=torch_dtype)


def checkpointing_train_mode(llm: nn.Module, mode: bool = True) -> None:
    """Put only the modules that checkpoint (``gradient_checkpointing = True``) in training mode.

    ``transformers`` checkpoints a decoder layer only while it is in training mode. A frozen LLM stays in eval mode
    (no dropout), which would silently turn checkpointing off in the ``projector`` stage, where gradients still flow
    through the LLM to the projector and its activations dominate memory. The checkpointed layers and the model
    that owns them get ``training = mode``; every other module (attention, MLP, dropout, norms) stays in eval mode,
    so dropout remains off.
    """
    for module in llm.modules():
        module.training = bool(mode and getattr(module, "gradient_checkpointing", False) is True)


def enable_checkpointing(llm: nn.Module) -> None:
    """Non-reentrant activation checkpointing of the LLM's decoder layers (``transformers`` ≥ 5 name or older)."""
    kwargs = {"use_reentrant": False}
    if hasattr(llm, "activation_checkpointing_enable"):
        llm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


class VideoQATask(BaseTask):
    """Encoder → projector → causal LM, trained on video–text conversations with answer-only supervision.

    Stages (paper §14.2): ``"projector"`` trains only the projector (stage 1); ``"full"`` trains projector + LLM
    (stages 1.5–3, or LoRA adapters of the LLM with ``lora``); ``"end_to_end"`` also trains the encoder. Frozen parts
    have ``requires_grad=False``, stay in eval mode and are not in the optimizer. A later stage starts from the
    weights of an earlier one with ``init_from`` (weights only; optimizer and schedule start fresh).

    Metrics: ``train/loss`` / ``val/loss`` (mean cross-entropy over answer tokens), ``train/answer_acc`` (share of
    samples whose answer tokens are all predicted correctly, teacher-forced); on multiple-choice batches
    ``val/accuracy`` (``test/accuracy``) by option log-likelihood or generation (``score_mode``).

    Args:
        encoder, pretrained, encoder_overrides, checkpoint_key: the video encoder (:func:`jepa.tasks.base.
            build_encoder`).
        llm: Hub id or directory of a causal LM (``Qwen/Qwen2-7B-Instruct``, Llama 3.1 8B Instruct …).
        llm_config: instead of ``llm``, a ``transformers`` config dict (``model_type`` + fields) for a randomly
            initialised LM (tests, CPU demos). A random LM is kept in checkpoints even when frozen.
        tokenizer: Hub id / directory, or ``"builtin:words"``; default: the same as ``llm``.
        llm_dtype: dtype the LLM weights are loaded in (``"bfloat16"`` for 7–8B models).
        projector: ``"attentive"`` (pooling by ``pooling_factor``) or ``"mlp"`` (no pooling).
        pooling_factor, projector_heads, projector_depth, projector_hidden: projector shape.
        num_frames, crop_size: the clip the data module produces; fixes the number of encoder tokens.
        stage: which parts train (see above).
        lr, weight_decay, warmup_fraction, schedule, min_lr: AdamW with linear warmup over the first
            ``warmup_fraction`` of steps, then cosine to ``min_lr`` or constant (paper: wd 0, 3 % warmup).
        betas: AdamW betas.
        lora: ``peft.LoraConfig`` fields (``r``, ``lora_alpha``, ``target_modules`` …; needs ``peft``); the LLM
            trains only through adapters, its base weights stay frozen. Checkpoints hold the adapters, and the base
            weights only when they cannot be rebuilt from ``llm`` (``llm_config``, ``save_frozen``).
            :meth:`merge_lora` folds them in for inference.
        gradient_checkpointing: checkpoint the layers of a trainable LLM (``full``, ``end_to_end``, LoRA) and a
            trainable encoder's blocks (``transformers`` skips checkpointing in a frozen LLM, which is in eval mode).
        init_from: a checkpoint (``.ckpt`` of this task) whose weights initialise the model.
        score_mode: multiple-choice scoring, ``"loglik"`` or ``"generate"``.
        max_new_tokens: generation length for ``"generate"`` and :meth:`answer`.
        save_frozen: also save frozen parts loaded from weights (a pretrained encoder / LLM). Frozen parts without
            weights to rebuild them from (random init, a module given directly) are always saved.
    """

    def __init__(
        self,
        encoder: EncoderSpec = "vit_large",
        pretrained: bool | str = False,
        encoder_overrides: dict[str, Any] | None = None,
        checkpoint_key: str | None = None,
        llm: str | None = None,
        llm_config: dict[str, Any] | None = None,
        tokenizer: str | None = None,
        llm_dtype: str = "float32",
        projector: ProjectorKind = "attentive",
        pooling_factor: int = 4,
        projector_heads: int = 16,
        projector_depth: int = 1,
        projector_hidden: int | None = None,
        num_frames: int = 16,
        crop_size: int = 256,
        stage: Stage = "projector",
        lr: float = 1e-5,
        weight_decay: float = 0.0,
        warmup_fraction: float = 0.03,
        schedule: Schedule = "cosine",
        min_lr: float = 0.0,
        betas: Sequence[float] = (0.9, 0.999),
        lora: dict[str, Any] | None = None,
        gradient_checkpointing: bool = False,
        init_from: str | None = None,
        score_mode: ScoreMode = "loglik",
        max_new_tokens: int = 16,
        save_frozen: bool = False,
    ) -> None:
        if stage not in ("projector", "full", "end_to_end"):
            raise ValueError(f"VideoQATask: stage must be 'projector', 'full' or 'end_to_end', got {stage!r}")
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"VideoQATask: schedule must be 'cosine' or 'constant', got {schedule!r}")
        if score_mode not in ("loglik", "generate"):
            raise ValueError(f"VideoQATask: score_mode must be 'loglik' or 'generate', got {score_mode!r}")
        if lora is not None and stage == "projector":
            raise ValueError("VideoQATask: `lora` trains the LLM; use it with stage 'full' or 'end_to_end'")
        if lora is not None:
            lora_config(lora)  # fails early (peft missing, unknown field) before any model is built
        self._encoder_arg = (encoder,)  # a tuple: a module cannot be assigned before Module.__init__
        self.pretrained = pretrained
        self.encoder_overrides, self.checkpoint_key = encoder_overrides, checkpoint_key
        self.llm_source, self.llm_config, self.llm_dtype = llm, llm_config, llm_dtype
        self.tokenizer_source = tokenizer if tokenizer is not None else llm
        self.projector_kind, self.pooling_factor = projector, pooling_factor
        self.projector_heads, self.projector_depth, self.projector_hidden = (
            projector_heads,
            projector_depth,
            projector_hidden,
        )
        self.num_frames, self.crop_size, self.stage = num_frames, crop_size, stage
        self.lr, self.weight_decay, self.warmup_fraction = lr, weight_decay, warmup_fraction
        self.schedule, self.min_lr, self.betas = schedule, min_lr, tuple(betas)
        self.lora, self.gradient_checkpointing = lora, gradient_checkpointing
        self.score_mode, self.max_new_tokens = score_mode, max_new_tokens
        self._eval_only: list[str] = []
        self._unsaved_llm_keys: frozenset[str] = frozenset()
        super().__init__(save_frozen=save_frozen)
        self.save_hyperparameters(ignore=["encoder"] if not isinstance(encoder, str) else None)
        if init_from is not None:
            self.load_weights(init_from)

    # ---------------------------------------------------------------- construction
    def configure_models(self) -> None:
        encoder_arg, self._encoder_arg = self._encoder_arg[0], ()  # do not keep a second reference to it
        if self.tokenizer_source is None:
            raise ValueError("VideoQATask: give `tokenizer` (Hub id, directory or 'builtin:words') or `llm`")
        self.tokenizer = build_tokenizer(self.tokenizer_source)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        encoder = build_encoder(encoder_arg, self.pretrained, self.encoder_overrides, self.checkpoint_key)
        llm = build_llm(self.llm_source, self.llm_config, self.llm_dtype, len(self.tokenizer))
        llm.config.use_cache = False
        hidden = llm.get_input_embeddings().embedding_dim
        width = getattr(encoder, "embed_dim", None)
        if width is None:
            raise ValueError(f"VideoQATask: the encoder {type(encoder).__name__} has no `embed_dim` attribute")
        num_tokens = self._encoder_tokens(encoder)
        self.projector = build_projector(
            self.projector_kind,
            width,
            hidden,
            num_tokens,
            pooling_factor=self.pooling_factor,
            num_heads=self.projector_heads,
            depth=self.projector_depth,
            hidden_dim=self.projector_hidden,
        )
        self.num_visual_tokens = self.projector.num_output_tokens(num_tokens)
        if self.stage == "end_to_end":
            self.encoder = encoder
            if self.gradient_checkpointing and hasattr(encoder, "set_grad_checkpointing"):
                encoder.set_grad_checkpointing(True)
        elif self._encoder_rebuildable(encoder_arg):
            self.register_frozen("encoder", encoder)  # rebuilt from its source: not saved
        else:
            self.encoder = freeze(encoder)  # random init or a given module: kept in checkpoints
            self._eval_only.append("encoder")
        if self.gradient_checkpointing:
            enable_checkpointing(llm)  # before LoRA wrapping, so that peft makes the input embeddings require grad
        if self.lora is not None:
            llm = apply_lora(llm, self.lora)  # base weights frozen, adapters trainable
            if self.llm_config is None and not self.save_frozen:
                # the base weights are rebuilt from `llm`: checkpoints hold the adapters (and the projector)
                self._unsaved_llm_keys = base_weight_keys(llm, prefix="llm.")
        if self.stage == "projector":
            if self.llm_config is None:
                self.register_frozen("llm", llm)  # rebuilt from its source: not saved
            else:
                self.llm = freeze(llm)  # random init cannot be rebuilt: kept in checkpoints
                self._eval_only.append("llm")
        else:
            self.llm = llm

    def _encoder_rebuildable(self, spec: EncoderSpec) -> bool:
        """True when the encoder comes from weights (a checkpoint source or a registry name with weights)."""
        from jepa.registry import ENCODERS

        return isinstance(spec, str) and (spec not in ENCODERS or self.pretrained is not False)

    def _encoder_tokens(self, encoder: nn.Module) -> int:
        """Encoder tokens per clip of ``num_frames × crop_size²``."""
        if hasattr(encoder, "patch_grid"):
            t, h, w = encoder.patch_grid(self.num_frames, self.crop_size, self.crop_size)
            return t * h * w
        with torch.no_grad():
            probe = torch.zeros(1, 3, self.num_frames, self.crop_size, self.crop_size)
            return int(encoder(probe).shape[1])

    def merge_lora(self) -> None:
        """Fold the LoRA adapters into the LLM's weights (inference/export); the task then has no ``lora``.

        Afterwards the checkpoint (:func:`jepa.mllm.commands.save_video_qa` or a Lightning ``.ckpt``) holds the
        whole merged LLM and loads without ``peft``; as ``init_from`` it starts a later stage without adapters.
        """
        if self.lora is None:
            raise ValueError("VideoQATask.merge_lora: this task has no LoRA adapters (`lora` is None)")
        self.llm = merge_lora(self.llm)
        self.lora = None
        self.hparams["lora"] = None
        self._unsaved_llm_keys = frozenset()

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Module state without frozen parts that are rebuilt from their source (incl. LoRA base weights)."""
        state = super().state_dict(*args, **kwargs)
        if not self._unsaved_llm_keys:
            return state
        prefix = kwargs.get("prefix", "")
        return {k: v for k, v in state.items() if k[len(prefix) :] not in self._unsaved_llm_keys}

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load a checkpoint of this task; tolerates the absence of exactly what :meth:`state_dict` leaves out."""
        if not self._unsaved_llm_keys:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        own = set(super(BaseTask, self).state_dict())
        saved = set(self.state_dict())
        missing, unexpected = sorted(saved - set(state_dict)), sorted(set(state_dict) - own)
        if strict and (missing or unexpected):
            raise RuntimeError(
                f"VideoQATask.load_state_dict: missing keys {missing[:10]}, unexpected keys {unexpected[:10]} "
                "(the frozen base weights of a LoRA LLM are rebuilt from `llm`, not expected in checkpoints)"
            )
        return super(BaseTask, self).load_state_dict(state_dict, strict=False, assign=assign)

    def train(self, mode: bool = True) -> VideoQATask:
        super().train(mode)
        for name in self._eval_only:
            getattr(self, name).eval()
        if self.stage == "projector" and self.gradient_checkpointing:
            checkpointing_train_mode(self.llm, mode)  # frozen, no dropout, but its layers still checkpoint
        return self

    def load_weights(self, path: str) -> None:
        """Initialise from a task checkpoint (weights only, ``weights_only=True``); the projector must be in it.

        A plain LLM's weights (stage 1, a merged head) initialise the base of a LoRA-wrapped LLM; adapters that the
        checkpoint lacks keep their initialisation (``lora_B = 0``: the wrapped LLM starts equal to the plain one).
        """
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint.get("state_dict", checkpoint)
        if not any(key.startswith("projector.") for key in state):
            raise ValueError(f"init_from {path}: no 'projector.*' weights; expected a VideoQATask checkpoint")
        own = super(BaseTask, self).state_dict()
        if self.lora is not None:
            state = adapt_plain_state(state, own)  # stage 1 / merged LLM keys → the wrapped LLM's keys
        elif has_lora_keys(state):
            raise ValueError(
                f"init_from {path}: the checkpoint holds LoRA adapter weights but this task has no `lora`; give the "
                "same `lora` fields, or merge the adapters first (VideoQATask.merge_lora + "
                "jepa.mllm.commands.save_video_qa)"
            )
        unexpected = sorted(set(state) - set(own))
        if unexpected:
            raise ValueError(f"init_from {path}: unexpected keys {unexpected[:10]} for this model")
        mismatched = [k for k, v in state.items() if own[k].shape != v.shape]
        if mismatched:
            raise ValueError(f"init_from {path}: shape mismatch for {mismatched[:10]} (different projector/LLM?)")
        super(BaseTask, self).load_state_dict(state, strict=False)

    # ---------------------------------------------------------------- forward pieces
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` → projected visual tokens ``(B, Nv, H_llm)`` in the LLM's dtype."""
        if self.stage == "end_to_end":
            tokens = self.encoder(video)  # (B, N, D)
        else:
            with torch.no_grad():
                tokens = self.encoder(video)  # (B, N, D)
        visual = self.projector(tokens.to(next(self.projector.parameters()).dtype))  # (B, Nv, H)
        return visual.to(self.llm.get_input_embeddings().weight.dtype)

    def _embed(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    def fuse(
        self,
        visual: torch.Tensor,
        conversations: Sequence[Sequence[dict[str, str]]],
        where: Sequence[str] | None = None,
    ):
        """Tokenize conversations and splice ``visual`` ``(B, Nv, H)``; returns :class:`jepa.mllm.fusion.FusedBatch`."""
        names = list(where) if where is not None else [f"sample {b}" for b in range(len(conversations))]
        pairs = zip(conversations, names, strict=True)
        encoded = [encode_conversation(self.tokenizer, turns, name) for turns, name in pairs]
        ids, labels = zip(*encoded, strict=True)
        return splice_visual(list(ids), visual, self._embed(), list(labels), padding_side="right")

    def _lm_logits(self, fused: Any) -> torch.Tensor:
        out = self.llm(
            inputs_embeds=fused.inputs_embeds,
            attention_mask=fused.attention_mask,
            position_ids=fused.position_ids,
            use_cache=False,
        )
        return out.logits  # (B, L, V)

    @staticmethod
    def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean next-token cross-entropy over answer tokens, and per-sample exact match ``(B,)`` of the answers."""
        shifted = logits[:, :-1].float()  # (B, L-1, V)
        targets = labels[:, 1:]  # (B, L-1)
        loss = F.cross_entropy(shifted.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        valid = targets != IGNORE_INDEX
        correct = (shifted.argmax(-1) == targets) | ~valid
        return loss, correct.all(-1) & valid.any(-1)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        visual = self.encode_video(batch["video"])
        fused = self.fuse(visual, batch["conversations"], batch.get("where"))
        loss, exact = self.answer_loss(self._lm_logits(fused), fused.labels)
        size = len(batch["conversations"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/answer_acc", exact.float().mean(), prog_bar=True, batch_size=size)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=size)
        self.log_throughput("train/videos_per_s", size)
        return loss

    def _eval_step(self, batch: dict[str, Any], prefix: str) -> None:
        visual = self.encode_video(batch["video"])
        size = len(batch["conversations"])
        fused = self.fuse(visual, batch["conversations"], batch.get("where"))
        loss, exact = self.answer_loss(self._lm_logits(fused), fused.labels)
        self.log(f"{prefix}/loss", loss, batch_size=size, sync_dist=True)
        self.log(f"{prefix}/answer_acc", exact.float().mean(), batch_size=size, sync_dist=True)
        if "options" in batch:
            predictions = self.choose(visual, batch["question"], batch["options"])
            correct = (predictions == batch["answer"].to(predictions.device)).float()
            self.log(f"{prefix}/accuracy", correct.mean(), prog_bar=True, batch_size=size, sync_dist=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    # ---------------------------------------------------------------- multiple choice and generation
    @torch.no_grad()
    def option_logprobs(
        self, visual: torch.Tensor, questions: Sequence[str], options: Sequence[Sequence[str]]
    ) -> torch.Tensor:
        """Log-likelihood of each option's letter: ``(B, K_max)``, ``-inf`` beyond a sample's option count."""
        rows, owners = [], []
        for b, (question, opts) in enumerate(zip(questions, options, strict=True)):
            prompt = mc_prompt(question, opts)
            for k in range(len(opts)):
                rows.append([{"from": "human", "value": prompt}, {"from": "gpt", "value": chr(ord("A") + k)}])
                owners.append((b, k))
        index = torch.tensor([b for b, _ in owners], device=visual.device)
        fused = self.fuse(visual[index], rows)
        scores = answer_logprobs(self._lm_logits(fused), fused.labels)  # (B·K,)
        out = torch.full((len(questions), max(len(o) for o in options)), -math.inf, device=visual.device)
        for (b, k), score in zip(owners, scores, strict=True):
            out[b, k] = score
        return out

    @torch.no_grad()
    def generate(self, visual: torch.Tensor, prompts: Sequence[str], max_new_tokens: int | None = None) -> list[str]:
        """Greedy answers to ``prompts`` (user text, one per video) given ``visual`` ``(B, Nv, H)``."""
        ids = [encode_prompt(self.tokenizer, [{"from": "human", "value": p}]) for p in prompts]
        fused = splice_visual(ids, visual, self._embed(), padding_side="left")
        self.llm.config.use_cache = True
        try:
            out = self.llm.generate(
                inputs_embeds=fused.inputs_embeds,
                attention_mask=fused.attention_mask,
                max_new_tokens=max_new_tokens or self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        finally:
            self.llm.config.use_cache = False
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    @torch.no_grad()
    def choose(self, visual: torch.Tensor, questions: Sequence[str], options: Sequence[Sequence[str]]) -> torch.Tensor:
        """Predicted option index ``(B,)`` (``-1`` when a generated answer cannot be parsed)."""
        if self.score_mode == "loglik":
            return self.option_logprobs(visual, questions, options).argmax(-1)
        texts = self.generate(visual, [mc_prompt(q, o) for q, o in zip(questions, options, strict=True)])
        parsed = [parse_choice(text, opts) for text, opts in zip(texts, options, strict=True)]
        return torch.tensor([-1 if p is None else p for p in parsed], device=visual.device)

    @torch.no_grad()
    def answer(self, video: torch.Tensor, question: str, options: Sequence[str] | None = None) -> str:
        """Answer one question about ``video`` ``(3, T, H, W)``: generated text (options listed when given)."""
        visual = self.encode_video(video.unsqueeze(0).to(self.device))  # (1, Nv, H)
        prompt = mc_prompt(question, options) if options else question
        return self.generate(visual, [prompt])[0]

    # ---------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        parameters = [p for p in self.parameters() if p.requires_grad]
        if not parameters:
            raise ValueError(f"VideoQATask: stage {self.stage!r} leaves no trainable parameter")
        optimizer = torch.optim.AdamW(parameters, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(round(self.warmup_fraction * total))
        floor = self.min_lr / self.lr if self.lr > 0 else 0.0

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if self.schedule == "constant":
                return 1.0
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
