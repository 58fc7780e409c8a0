"""Multiple-choice helpers: prompt, answer normalisation, answer parsing, answer log-likelihoods."""

from __future__ import annotations

import pytest
import torch

from jepa.mllm.evaluation import MC_INSTRUCTION, answer_index, answer_logprobs, mc_prompt, parse_choice
from jepa.mllm.fusion import IGNORE_INDEX

OPTIONS = ["left", "right", "up", "down"]


def test_mc_prompt_letters_the_options() -> None:
    assert mc_prompt("Which way?", OPTIONS).splitlines() == [
        "Which way?",
        "(A) left",
        "(B) right",
        "(C) up",
        "(D) down",
        MC_INSTRUCTION,
    ]


@pytest.mark.parametrize(("answer", "expected"), [(2, 2), ("C", 2), ("(c)", 2), ("up", 2), ("down", 3), ("A", 0)])
def test_answer_index_accepts_int_letter_text(answer: int | str, expected: int) -> None:
    assert answer_index(answer, OPTIONS) == expected


def test_answer_index_rejects_bad_answers() -> None:
    with pytest.raises(ValueError, match="out of range"):
        answer_index(4, OPTIONS)
    with pytest.raises(ValueError, match="neither a letter"):
        answer_index("E", OPTIONS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("B", 1), ("(b)", 1), ("B. right", 1), ("d down", 3), ("it moves up", 2), ("left or right", None), ("", None),
     ("E", None), ("zzz", None)],
)  # fmt: skip
def test_parse_choice(text: str, expected: int | None) -> None:
    assert parse_choice(text, OPTIONS) == expected


def test_answer_logprobs_sums_supervised_next_token_logprobs() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, 4, IGNORE_INDEX], [IGNORE_INDEX, 1, 1, 1, 6]])
    logp = torch.log_softmax(logits, -1)
    expected = torch.stack(
        [logp[0, 1, 3] + logp[0, 2, 4], logp[1, 0, 1] + logp[1, 1, 1] + logp[1, 2, 1] + logp[1, 3, 6]]
    )
    torch.testing.assert_close(answer_logprobs(logits, labels), expected)
