"""Multiple-choice video QA: prompt format, answer parsing, option log-likelihoods and accuracy.

Format (PerceptionTest / MVP / TempCompass style, see docs/mllm.md): a question, ``K`` options and the index of the
correct one. The prompt lists the options with letters and asks for the letter::

    <question>
    (A) <option 0>
    (B) <option 1>
    Answer with the option's letter from the given choices directly.

Scoring modes:

- ``"loglik"``: the summed log-probability of each candidate answer (the letter, plus the template's end-of-turn
  tokens, identical for all options) given video + prompt; prediction = argmax. Never unparsable.
- ``"generate"``: greedy generation, then :func:`parse_choice` (a letter, ``(B)``, ``B.``, or an option's text);
  an unparsable answer counts as wrong.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Literal

import torch

from jepa.mllm.fusion import IGNORE_INDEX

ScoreMode = Literal["loglik", "generate"]
LETTERS = string.ascii_uppercase
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."

__all__ = [
    "LETTERS",
    "MC_INSTRUCTION",
    "ScoreMode",
    "answer_index",
    "answer_logprobs",
    "mc_prompt",
    "parse_choice",
]


def mc_prompt(question: str, options: Sequence[str]) -> str:
    """The user text of a multiple-choice question (without the video placeholder)."""
    if not 1 < len(options) <= len(LETTERS):
        raise ValueError(f"mc_prompt: expected 2..{len(LETTERS)} options, got {len(options)}")
    lines = [question.strip(), *(f"({LETTERS[i]}) {option}" for i, option in enumerate(options)), MC_INSTRUCTION]
    return "\n".join(lines)


def answer_index(answer: int | str, options: Sequence[str], where: str = "answer") -> int:
    """Index of the correct option from an int, a letter (``"B"``, ``"(B)"``) or the option's text.

    Raises:
        ValueError: out of range or not matching any option (names ``where``).
    """
    if isinstance(answer, bool):
        raise ValueError(f"{where}: expected an int, a letter or an option's text, got {answer!r}")
    if isinstance(answer, int):
        if 0 <= answer < len(options):
            return answer
        raise ValueError(f"{where}: index {answer} out of range for {len(options)} options")
    text = answer.strip()
    if text in options:
        return list(options).index(text)
    letter = text.strip("(). ").upper()
    if len(letter) == 1 and letter in LETTERS[: len(options)]:
        return LETTERS.index(letter)
    raise ValueError(f"{where}: {answer!r} is neither a letter A..{LETTERS[len(options) - 1]} nor one of {options}")


def parse_choice(text: str, options: Sequence[str]) -> int | None:
    """Option index named by a generated answer, or None when it names none (or several).

    Accepted: a leading letter (``"B"``, ``"(b)"``, ``"B. right"``, ``"b right"``), else a unique option text
    contained in the answer (case-insensitive).
    """
    cleaned = text.strip()
    valid = LETTERS[: len(options)]
    match = re.match(r"^\(?([A-Za-z])\)?(?:[\s.,:)]|$)", cleaned)
    if match and match.group(1).upper() in valid:
        return valid.index(match.group(1).upper())
    lowered = cleaned.lower()
    hits = [i for i, option in enumerate(options) if re.search(rf"\b{re.escape(option.lower())}\b", lowered)]
    return hits[0] if len(hits) == 1 else None


def answer_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of the supervised tokens of each row.

    Args:
        logits: ``(B, L, V)`` next-token logits (position ``t`` predicts token ``t + 1``).
        labels: ``(B, L)`` with :data:`IGNORE_INDEX` on unsupervised positions.

    Returns:
        ``(B,)`` float32 sums of ``log p(labels[t + 1] | ≤ t)`` over supervised positions.
    """
    shifted_logits = logits[:, :-1].float()  # (B, L-1, V)
    targets = labels[:, 1:]  # (B, L-1)
    valid = targets != IGNORE_INDEX
    logp = torch.log_softmax(shifted_logits, dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, L-1)
    return (picked * valid).sum(-1)
