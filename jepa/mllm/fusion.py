"""Early fusion: tokenize LLaVA-style conversations and splice projected visual tokens at the video placeholder.

Conventions (spec mllm.md §1 leaves chat template and loss masking UNKNOWN; these are the LLaVA ones):

- Conversations are lists of turns ``{"from": "human" | "gpt" | "system", "value": str}`` (``user`` / ``assistant``
  accepted too). The first human turn holds the placeholder :data:`VIDEO_PLACEHOLDER` (``"<video>"``) once; a
  conversation without it gets ``"<video>\\n"`` prepended to its first human turn.
- The text is rendered with the tokenizer's chat template when it has one (else ``"USER: …\\nASSISTANT: …<eos>\\n"``).
  The rendering is split into prompt pieces and answer pieces by rendering growing prefixes of the conversation:
  an answer piece is what the assistant turn adds after the generation prompt, i.e. the answer text **and the
  template's end-of-turn tokens** (so the model learns to stop). Only answer pieces are supervised; every other
  position (system prompt, user turns, role headers, visual tokens, padding) has label ``-100``.
- Pieces are tokenized separately (``add_special_tokens=False``) and concatenated; the placeholder becomes one
  sentinel id :data:`VIDEO_TOKEN_ID` (``-200``) that :func:`splice_visual` replaces by the ``Nv`` projected tokens.
- Padding: ``"right"`` for training (default), ``"left"`` for batched generation. ``position_ids`` are computed from
  the attention mask (``cumsum − 1``), so left padding gives every sample positions starting at 0.

transformers and tokenizers are imported lazily, inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

VIDEO_PLACEHOLDER = "<video>"
VIDEO_TOKEN_ID = -200
IGNORE_INDEX = -100
PaddingSide = Literal["left", "right"]

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}

__all__ = [
    "IGNORE_INDEX",
    "VIDEO_PLACEHOLDER",
    "VIDEO_TOKEN_ID",
    "FusedBatch",
    "build_word_tokenizer",
    "encode_conversation",
    "encode_prompt",
    "splice_visual",
    "to_messages",
]


def to_messages(turns: Sequence[Mapping[str, str]], where: str = "conversation") -> list[dict[str, str]]:
    """LLaVA turns → chat messages ``[{"role", "content"}]`` with the video placeholder in the first user turn.

    Raises:
        ValueError: unknown role, missing keys, no user turn, or more than one placeholder (names ``where``).
    """
    messages: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        speaker = turn.get("from", turn.get("role"))
        text = turn.get("value", turn.get("content"))
        if speaker not in _ROLES or not isinstance(text, str):
            raise ValueError(
                f"{where}: turn {i} must have 'from' in {sorted(_ROLES)} and a string 'value', got {dict(turn)}"
            )
        messages.append({"role": _ROLES[speaker], "content": text})
    users = [m for m in messages if m["role"] == "user"]
    if not users:
        raise ValueError(f"{where}: no human/user turn")
    count = sum(m["content"].count(VIDEO_PLACEHOLDER) for m in messages)
    if count > 1:
        raise ValueError(f"{where}: {count} '{VIDEO_PLACEHOLDER}' placeholders; expected at most one video")
    if count == 0:
        users[0]["content"] = f"{VIDEO_PLACEHOLDER}\n{users[0]['content']}"
    return messages


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """Render messages with the chat template, or the plain ``USER:/ASSISTANT:`` format without one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    eos = tokenizer.eos_token or ""
    parts = []
    for m in messages:
        if m["role"] == "assistant":
            parts.append(f"ASSISTANT: {m['content']}{eos}\n")
        else:
            parts.append(f"{m['role'].upper()}: {m['content']}\n")
    if add_generation_prompt:
        parts.append("ASSISTANT:")
    return "".join(parts)


def _tokenize_piece(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` with each placeholder replaced by one :data:`VIDEO_TOKEN_ID`."""
    ids: list[int] = []
    for k, chunk in enumerate(text.split(VIDEO_PLACEHOLDER)):
        if k:
            ids.append(VIDEO_TOKEN_ID)
        if chunk:
            ids.extend(tokenizer(chunk, add_special_tokens=False)["input_ids"])
    return ids


def _bos(tokenizer: Any) -> list[int]:
    """A BOS id for the plain format (chat templates write their own)."""
    if getattr(tokenizer, "chat_template", None) or tokenizer.bos_token_id is None:
        return []
    return [int(tokenizer.bos_token_id)]


def encode_conversation(
    tokenizer: Any, turns: Sequence[Mapping[str, str]], where: str = "conversation"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and labels of a conversation; only assistant answers (+ end-of-turn tokens) are supervised.

    Args:
        tokenizer: a ``transformers`` tokenizer (its chat template is used when set).
        turns: LLaVA turns (see module docstring); must contain at least one assistant turn.
        where: named in errors (e.g. ``"train.jsonl:12"``).

    Returns:
        ``input_ids`` ``(L,)`` int64 with one :data:`VIDEO_TOKEN_ID`, and ``labels`` ``(L,)`` int64 equal to
        ``input_ids`` on answer tokens and :data:`IGNORE_INDEX` elsewhere.
    """
    messages = to_messages(turns, where)
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError(f"{where}: no assistant (gpt) turn to supervise")
    ids: list[int] = _bos(tokenizer)
    labels: list[int] = [IGNORE_INDEX] * len(ids)
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], add_generation_prompt=True)
        full = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ValueError(
                f"{where}: the chat template of {type(tokenizer).__name__} does not render conversation prefixes "
                "as prefixes of the full conversation; cannot locate the answer tokens"
            )
        prompt_ids = _tokenize_piece(tokenizer, prompt[len(done) :])
        answer_ids = _tokenize_piece(tokenizer, full[len(prompt) :])
        if VIDEO_TOKEN_ID in answer_ids:
            raise ValueError(f"{where}: the placeholder '{VIDEO_PLACEHOLDER}' is in an assistant turn")
        ids += prompt_ids + answer_ids
        labels += [IGNORE_INDEX] * len(prompt_ids) + answer_ids
        done = full
    return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def encode_prompt(tokenizer: Any, turns: Sequence[Mapping[str, str]], where: str = "prompt") -> torch.Tensor:
    """Token ids ``(L,)`` of a conversation ending with a user turn, followed by the generation prompt."""
    messages = to_messages(turns, where)
    text = _render(tokenizer, messages, add_generation_prompt=True)
    return torch.tensor(_bos(tokenizer) + _tokenize_piece(tokenizer, text), dtype=torch.long)


@dataclass
class FusedBatch:
    """LLM inputs after splicing; all ``(B, L)`` except ``inputs_embeds`` ``(B, L, H)``.

    ``labels`` is None when no labels were given; ``visual_mask`` marks the positions holding visual tokens.
    """

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor | None
    visual_mask: torch.Tensor


def splice_visual(
    input_ids: Sequence[torch.Tensor],
    visual: torch.Tensor,
    embed: Callable[[torch.Tensor], torch.Tensor],
    labels: Sequence[torch.Tensor] | None = None,
    padding_side: PaddingSide = "right",
) -> FusedBatch:
    """Replace each sample's :data:`VIDEO_TOKEN_ID` by its ``Nv`` visual tokens and pad the batch.

    Args:
        input_ids: ``B`` tensors ``(L_b,)`` each with exactly one :data:`VIDEO_TOKEN_ID`.
        visual: projected visual tokens ``(B, Nv, H)``.
        embed: the LLM's input embedding (``llm.get_input_embeddings()``), ids ``(L,)`` → ``(L, H)``.
        labels: optional ``B`` tensors ``(L_b,)``; visual and padding positions get :data:`IGNORE_INDEX`.
        padding_side: ``"right"`` (training) or ``"left"`` (generation).

    Returns:
        :class:`FusedBatch` with ``L = max_b(L_b − 1 + Nv)``; padded embeddings are zeros with mask 0.
    """
    if visual.ndim != 3 or visual.shape[0] != len(input_ids):
        raise ValueError(f"splice_visual: visual must be (B={len(input_ids)}, Nv, H), got {tuple(visual.shape)}")
    if labels is not None and len(labels) != len(input_ids):
        raise ValueError(f"splice_visual: {len(labels)} label rows for {len(input_ids)} id rows")
    if padding_side not in ("left", "right"):
        raise ValueError(f"splice_visual: padding_side must be 'left' or 'right', got {padding_side!r}")
    num_visual, hidden = visual.shape[1:]
    rows, label_rows = [], []
    for b, ids in enumerate(input_ids):
        where = (ids == VIDEO_TOKEN_ID).nonzero().flatten()
        if where.numel() != 1:
            raise ValueError(f"splice_visual: sample {b} has {where.numel()} video placeholders; expected exactly 1")
        p = int(where)
        text = embed(ids.clamp(min=0).to(visual.device)).to(visual.dtype)  # (L_b, H)
        rows.append(torch.cat([text[:p], visual[b], text[p + 1 :]]))  # (L_b - 1 + Nv, H)
        if labels is not None:
            lab = labels[b].to(visual.device)
            filler = torch.full((num_visual,), IGNORE_INDEX, dtype=lab.dtype, device=lab.device)
            label_rows.append(torch.cat([lab[:p], filler, lab[p + 1 :]]))
    length = max(row.shape[0] for row in rows)
    batch = len(rows)
    embeds = visual.new_zeros(batch, length, hidden)  # (B, L, H)
    mask = torch.zeros(batch, length, dtype=torch.long, device=visual.device)
    out_labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long, device=visual.device)
    visual_mask = torch.zeros(batch, length, dtype=torch.bool, device=visual.device)
    for b, row in enumerate(rows):
        n = row.shape[0]
        span = slice(length - n, length) if padding_side == "left" else slice(0, n)
        embeds[b, span] = row
        mask[b, span] = 1
        if labels is not None:
            out_labels[b, span] = label_rows[b]
        p = int((input_ids[b] == VIDEO_TOKEN_ID).nonzero())
        start = span.start + p
        visual_mask[b, start : start + num_visual] = True
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, L)
    return FusedBatch(embeds, mask, position_ids, out_labels if labels is not None else None, visual_mask)


DEFAULT_WORD_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def build_word_tokenizer(words: Sequence[str], chat_template: str | None = DEFAULT_WORD_CHAT_TEMPLATE) -> Any:
    """A local word-level ``PreTrainedTokenizerFast`` (no download): whitespace/punctuation splitting, lower case.

    Vocabulary: ``<pad> <unk> <s> </s>``, the role markers ``<|system|> <|user|> <|assistant|> <|end|>`` (special,
    never split), then ``words`` (lower-cased, de-duplicated) and the punctuation ``( ) . , ? : !``. Used by the tests
    and the tiny CPU recipe; real recipes load a Hub tokenizer.

    Args:
        words: the vocabulary words.
        chat_template: Jinja chat template (default: ``<|role|> content <|end|>`` per message); None for the plain
            ``USER:/ASSISTANT:`` format.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    vocab: dict[str, int] = {}
    for token in [*specials, *(w.lower() for w in words), *"().,?:!", "user", "assistant"]:
        vocab.setdefault(token, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=specials[4:],
    )
    tokenizer.chat_template = chat_template
    return tokenizer
