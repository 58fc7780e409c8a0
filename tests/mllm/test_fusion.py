"""Fusion: answer-only labels, the video placeholder, splicing visual tokens, padding and positions."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from jepa.mllm.fusion import (
    IGNORE_INDEX,
    VIDEO_TOKEN_ID,
    encode_conversation,
    encode_prompt,
    splice_visual,
)

TWO_TURNS = [
    {"from": "human", "value": "<video>\nWhich way does the object move?"},
    {"from": "gpt", "value": "left"},
    {"from": "human", "value": "Which way?"},
    {"from": "gpt", "value": "right up"},
]


def test_labels_cover_exactly_the_answer_tokens(tokenizer: Any) -> None:
    ids, labels = encode_conversation(tokenizer, TWO_TURNS)
    assert ids.shape == labels.shape
    supervised = labels != IGNORE_INDEX
    torch.testing.assert_close(labels[supervised], ids[supervised])  # labels are the ids where supervised
    tokens = tokenizer.convert_ids_to_tokens(ids.clamp(min=0).tolist())
    # the supervised tokens are the two answers, each with the template's end-of-turn token, in order
    assert [t for t, s in zip(tokens, supervised.tolist(), strict=True) if s] == [
        "left", "<|end|>", "right", "up", "<|end|>"
    ]  # fmt: skip
    # every other token (role markers, questions, the video placeholder) is masked
    assert labels[ids == VIDEO_TOKEN_ID].eq(IGNORE_INDEX).all()
    masked = {t for t, s in zip(tokens, supervised.tolist(), strict=True) if not s}
    assert {"<|user|>", "<|assistant|>", "which", "?"} <= masked
    assert int((ids == VIDEO_TOKEN_ID).sum()) == 1


def test_missing_placeholder_is_prepended_and_duplicates_rejected(tokenizer: Any) -> None:
    ids, _ = encode_conversation(tokenizer, [{"from": "human", "value": "Which way?"}, {"from": "gpt", "value": "up"}])
    assert int((ids == VIDEO_TOKEN_ID).sum()) == 1
    assert tokenizer.convert_ids_to_tokens([int(ids[0])]) == ["<|user|>"] and int(ids[1]) == VIDEO_TOKEN_ID
    with pytest.raises(ValueError, match="2 '<video>' placeholders"):
        encode_conversation(tokenizer, [{"from": "human", "value": "<video> <video>"}, {"from": "gpt", "value": "up"}])
    with pytest.raises(ValueError, match="no assistant"):
        encode_conversation(tokenizer, [{"from": "human", "value": "<video>"}])
    with pytest.raises(ValueError, match="turn 0"):
        encode_conversation(tokenizer, [{"from": "robot", "value": "x"}])


def test_plain_format_without_chat_template_supervises_answer_and_eos(tokenizer: Any) -> None:
    tokenizer.chat_template = None
    ids, labels = encode_conversation(tokenizer, TWO_TURNS[:2])
    assert int(ids[0]) == tokenizer.bos_token_id
    supervised = tokenizer.convert_ids_to_tokens(labels[labels != IGNORE_INDEX].tolist())
    assert supervised == ["left", "</s>"]


def test_prompt_ends_with_generation_prompt(tokenizer: Any) -> None:
    ids = encode_prompt(tokenizer, [{"from": "human", "value": "Which way?"}])
    assert tokenizer.convert_ids_to_tokens([int(ids[-1])]) == ["<|assistant|>"]
    assert int((ids == VIDEO_TOKEN_ID).sum()) == 1


@pytest.mark.parametrize("side", ["right", "left"])
def test_visual_tokens_land_at_the_placeholder(tokenizer: Any, side: str) -> None:
    torch.manual_seed(0)
    embed = torch.nn.Embedding(len(tokenizer), 8)
    short = encode_conversation(tokenizer, TWO_TURNS[:2])
    long = encode_conversation(tokenizer, TWO_TURNS)
    ids, labels = [short[0], long[0]], [short[1], long[1]]
    visual = torch.randn(2, 5, 8)
    fused = splice_visual(ids, visual, embed, labels, padding_side=side)  # type: ignore[arg-type]
    length = len(long[0]) - 1 + 5
    assert fused.inputs_embeds.shape == (2, length, 8)
    for b in range(2):
        n = len(ids[b]) - 1 + 5
        valid = fused.attention_mask[b].bool()
        assert int(valid.sum()) == n
        span = torch.arange(length - n, length) if side == "left" else torch.arange(n)
        assert valid[span].all()
        p = int((ids[b] == VIDEO_TOKEN_ID).nonzero())
        start = int(span[0]) + p
        torch.testing.assert_close(fused.inputs_embeds[b, start : start + 5], visual[b])
        assert fused.visual_mask[b].nonzero().flatten().tolist() == list(range(start, start + 5))
        assert fused.labels[b, start : start + 5].eq(IGNORE_INDEX).all()
        assert fused.labels[b, ~valid].eq(IGNORE_INDEX).all()
        # text around the visual tokens is the embedded ids, in order
        with torch.no_grad():
            torch.testing.assert_close(fused.inputs_embeds[b, span[0] : start], embed(ids[b][:p]))
            torch.testing.assert_close(fused.inputs_embeds[b, start + 5 : span[-1] + 1], embed(ids[b][p + 1 :]))
        # supervised labels survive the splice unchanged and in order
        assert (
            fused.labels[b][fused.labels[b] != IGNORE_INDEX].tolist() == labels[b][labels[b] != IGNORE_INDEX].tolist()
        )
        # positions count real tokens from 0
        assert fused.position_ids[b, valid].tolist() == list(range(n))


def test_splice_rejects_samples_without_exactly_one_placeholder(tokenizer: Any) -> None:
    embed = torch.nn.Embedding(len(tokenizer), 8)
    with pytest.raises(ValueError, match="sample 0 has 0 video placeholders"):
        splice_visual([torch.tensor([1, 2, 3])], torch.zeros(1, 2, 8), embed)
    with pytest.raises(ValueError, match="visual must be"):
        splice_visual([torch.tensor([1, VIDEO_TOKEN_ID])], torch.zeros(2, 2, 8), embed)
