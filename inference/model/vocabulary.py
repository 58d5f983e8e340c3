"""A model's special tokens, as its vocabulary defines them (read by the loaded model, used by prompts)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FimTokens:
    """Special tokens of a model trained for fill-in-the-middle (repository tokens where it has them)."""

    prefix: int
    suffix: int
    middle: int
    repo: int | None = None
    file_sep: int | None = None
    #: The prefix token's text, which tells the family ("<|fim_prefix|>", "<fim_prefix>", "▁<PRE>", ...).
    prefix_text: str = ""
