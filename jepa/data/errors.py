"""Errors raised while reading samples (videos, images) from disk or memory."""

from __future__ import annotations

import os

__all__ = ["BadSampleError"]


class BadSampleError(Exception):
    """A sample that cannot be turned into a clip: missing, empty, truncated, not a video, undecodable, too short.

    Datasets catch this error to skip (and log) the sample; anything else is a bug and propagates.

    Attributes:
        path: the file path of the sample, or a short description such as ``"<bytes: 1234>"`` for in-memory data.
        reason: what was wrong and what was expected.
    """

    def __init__(self, path: str | os.PathLike | None, reason: str) -> None:
        self.path = str(path) if path is not None else "<unknown>"
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep the two attributes when pickled across DataLoader worker processes
        return (type(self), (self.path, self.reason))
