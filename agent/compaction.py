"""Adaptive context compaction: as the context fills, older observations are reduced in stages.

Stages, each entered at its own share of the token budget and applied to turns older than a protected recent window:
  mask       tool results become a reference to their archived copy, with a short preview
  prune      masked results lose their preview (the reference stays, so the agent can read them back)
  summarise  the middle of the history becomes one summary written by the compact model
The system prompt and the first user message (the task's requirements) are never reduced. After every compaction
the invariants (COVE.md, the plan, open todos, the files touched) are injected again, fresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

INVARIANTS_TAG = "<invariants>"


@dataclass(frozen=True)
class Turn:
    """One message of the agent's context."""

    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    #: For tool results: the call, e.g. `read_file(path=argparse.py)`.
    call: str = ""
    #: Id of the archived full text once the turn has been masked.
    ref: int | None = None


@dataclass(frozen=True)
class CompactionPolicy:
    """Thresholds in percent of the budget; all user-settable."""

    budget_tokens: int = 16_000
    mask_percent: int = 50
    prune_percent: int = 70
    summarize_percent: int = 85
    #: Tokens of the most recent turns that are never reduced.
    protect_recent_tokens: int = 3_000
    preview_chars: int = 160


@dataclass(frozen=True)
class Compaction:
    """What one compaction did, for the transcript."""

    stage: str
    turns: int
    tokens_before: int
    tokens_after: int

    def describe(self) -> str:
        return f"compaction ({self.stage}): {self.turns} turns, {self.tokens_before} -> {self.tokens_after} tokens"


class ContextCompactor:
    """Applies the policy; `archive` keeps a turn's full text and returns its id, `summarize` calls the model."""

    def __init__(
        self,
        policy: CompactionPolicy,
        count_tokens: Callable[[str], int],
        archive: Callable[[Turn], int],
        summarize: Callable[[Sequence[Turn]], str],
    ) -> None:
        self.policy = policy
        self.count_tokens = count_tokens
        self.archive = archive
        self.summarize = summarize

    def tokens(self, turns: Sequence[Turn]) -> int:
        """The size of a context, in the counter's tokens."""
        return sum(self.count_tokens(turn.content) + 4 for turn in turns)

    def due(self, tokens: int) -> bool:
        """Whether a context of `tokens` reaches the first stage."""
        return tokens * 100 >= self.policy.mask_percent * self.policy.budget_tokens

    def compact(self, turns: list[Turn], invariants: str) -> tuple[list[Turn], list[Compaction]]:
        """The context reduced as far as its size calls for, and what was done."""
        policy = self.policy
        done: list[Compaction] = []
        stages = (
            ("mask", policy.mask_percent, self._mask),
            ("prune", policy.prune_percent, self._prune),
            ("summarize", policy.summarize_percent, self._summarize),
        )
        for stage, percent, reduce in stages:
            before = self.tokens(turns)
            if before * 100 < percent * policy.budget_tokens:
                continue
            reduced, changed = reduce(turns)
            if changed:
                turns = self._with_invariants(reduced, invariants)
                done.append(Compaction(stage, changed, before, self.tokens(turns)))
        return turns, done

    def _old(self, turns: Sequence[Turn]) -> range:
        """Indexes of turns that may be reduced: after the first user message, before the protected recent window."""
        first_user = next((i for i, t in enumerate(turns) if t.role == "user"), 0)
        recent, end = 0, len(turns)
        while (
            end > first_user + 1
            and recent + self.count_tokens(turns[end - 1].content) <= self.policy.protect_recent_tokens
        ):
            recent += self.count_tokens(turns[end - 1].content)
            end -= 1
        return range(first_user + 1, end)

    def _mask(self, turns: list[Turn]) -> tuple[list[Turn], int]:
        out, changed = list(turns), 0
        for i in self._old(turns):
            turn = turns[i]
            if turn.role == "tool" and turn.ref is None and len(turn.content) > self.policy.preview_chars:
                ref = self.archive(turn)
                preview = " ".join(turn.content[: self.policy.preview_chars].split())
                lines = turn.content.count("\n") + 1
                where = f"archived #{ref}, {lines} lines; read_output({ref}) shows it"
                text = f"[{turn.call} -> {where}. Starts: {preview} ...]"
                out[i] = dataclasses.replace(turn, content=text, ref=ref)
                changed += 1
        return out, changed

    def _prune(self, turns: list[Turn]) -> tuple[list[Turn], int]:
        out, changed = list(turns), 0
        for i in self._old(turns):
            turn = turns[i]
            if turn.role == "tool" and turn.ref is not None and "Starts:" in turn.content:
                out[i] = dataclasses.replace(turn, content=f"[{turn.call} -> archived #{turn.ref}]")
                changed += 1
        return out, changed

    def _summarize(self, turns: list[Turn]) -> tuple[list[Turn], int]:
        old = [i for i in self._old(turns) if not turns[i].content.startswith(INVARIANTS_TAG)]
        if len(old) < 2:
            return turns, 0
        middle = [turns[i] for i in old]
        refs = sorted({t.ref for t in middle if t.ref is not None})
        summary = self.summarize(middle).strip()
        if refs:
            summary += "\nArchived outputs: " + ", ".join(f"#{ref}" for ref in refs)
        keep = [t for i, t in enumerate(turns) if i not in set(old)]
        first_user = next((i for i, t in enumerate(keep) if t.role == "user"), 0)
        keep.insert(first_user + 1, Turn("user", f"<summary of {len(middle)} earlier turns>\n{summary}\n</summary>"))
        return keep, len(middle)

    def _with_invariants(self, turns: list[Turn], invariants: str) -> list[Turn]:
        rest = [t for t in turns if not t.content.startswith(INVARIANTS_TAG)]
        first_user = next((i for i, t in enumerate(rest) if t.role == "user"), 0)
        rest.insert(first_user + 1, Turn("user", f"{INVARIANTS_TAG}\n{invariants}\n</invariants>"))
        return rest
