"""The vocabulary of a completion job, shared by the faces that ask and the host and backends that generate: the
window around the cursor (`PromptWindow`), the mode and stop rule that bound it (`CompletionMode`, `StopRule`), the
workspace context (`PromptContext`, `ContextFile`), the job (`GenerationJob`), and what came of it (`Generated`,
`Warmed`, `StopReason`). Plain values: they cross the daemon's socket as they are (`codec`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

#: Characters that open a block when they end a line (Python's colon, C-like braces, open brackets).
BLOCK_OPENERS = (":", "{", "(", "[")


class CompletionMode(enum.Enum):
    """How much text a completion may cover."""

    LINE = "line"
    BLOCK = "block"
    #: Prose or code that is not typed at the cursor (local actions): it ends at one of `StopRule.stop_at`.
    TEXT = "text"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


@dataclass(frozen=True)
class StopRule:
    """Decides, from the text generated so far, whether generation is over and which part of it to keep."""

    mode: CompletionMode
    line_prefix: str
    line_suffix: str
    max_lines: int
    #: TEXT mode: the text ends before the first of these (which is not kept).
    stop_at: tuple[str, ...] = ()

    def cut(self, generated: str) -> str | None:
        """The completion to keep if generation should stop now, or None to go on."""
        if self.mode is CompletionMode.LINE:
            return self._cut_line(generated)
        if self.mode is CompletionMode.TEXT:
            return self._cut_text(generated)
        return self._cut_block(generated)

    def finish(self, generated: str, ended: bool) -> str:
        """The completion to keep when generation stopped for another reason.

        `ended` is true when the model itself ended the text; a block cut short by a token or time limit keeps only
        its whole lines.
        """
        cut = self.cut(generated)
        if cut is not None:
            return cut
        text = generated.lstrip(" \t") if self.mode is CompletionMode.TEXT else generated
        last_newline = text.rstrip().rfind("\n")
        if self.mode is CompletionMode.BLOCK and not ended and text[:last_newline].strip():
            # A partial last line is dropped only when whole lines come before it; a block cut short on its
            # first line still shows that line, as a single-line completion would.
            text = text[:last_newline]
        return text.rstrip()

    def _cut_line(self, generated: str) -> str | None:
        # At the end of a line that opens a block, a leading line break is allowed: the completion is the next line.
        start = 0
        if self.line_prefix.rstrip().endswith(BLOCK_OPENERS) and not self.line_suffix.strip():
            stripped = generated.lstrip(" \t")
            if stripped.startswith("\n"):
                start = len(generated) - len(stripped) + 1
        newline = generated.find("\n", start)
        return None if newline == -1 else generated[:newline].rstrip()

    def _cut_text(self, generated: str) -> str | None:
        # Spaces first are not part of the text (a line break is: it may be the stop).
        start = len(generated) - len(generated.lstrip(" \t"))
        ends = [index for index in (generated.find(stop, start) for stop in self.stop_at) if index != -1]
        return generated[start : min(ends)].rstrip() if ends else None

    def _cut_block(self, generated: str) -> str | None:
        lines = (self.line_prefix + generated).split("\n")
        base = _indent(self.line_prefix)
        # After an opener the body is deeper than the opener's line; on an empty line the block is the cursor's.
        limit = base + 1 if self.line_prefix.strip() else base
        blank_run = 0
        for number in range(1, len(lines) - 1):  # line 0 is the cursor's; the last may still grow
            line = lines[number]
            if not line.strip():
                blank_run += 1
                if blank_run >= 2:
                    return self._keep(lines, number)
                continue
            blank_run = 0
            if _indent(line) < limit:
                closes = _indent(line) == base and line.lstrip()[0] in ")]}"
                return self._keep(lines, number + 1 if closes else number)
            if number >= self.max_lines:
                return self._keep(lines, number + 1)
        last = lines[-1]
        if len(lines) > 1 and last.strip() and _indent(last) < limit and last.lstrip()[0] not in ")]}":
            return self._keep(lines, len(lines) - 1)
        return None

    def _keep(self, lines: list[str], count: int) -> str:
        return "\n".join(lines[:count])[len(self.line_prefix) :].rstrip()


@dataclass(frozen=True)
class PromptWindow:
    """Text before and after the cursor that goes into one prompt."""

    prefix: str
    suffix: str
    #: Zero-based line where the prefix starts (the anchor).
    anchor_line: int
    #: Text of the cursor's line before the cursor, and after it up to the line's end.
    line_prefix: str
    line_suffix: str


#: Why a suggestion ended: the stop rule cut it, the model ended it, the token or time limit; "suggestion": the rest
#: of an earlier one that the user typed through; "partial": answered while its generation went on (typing on).
StopReason = Literal["rule", "end", "tokens", "time", "suggestion", "partial"]


@dataclass(frozen=True)
class ContextFile:
    """A piece of the workspace context from one file: the file's name as a prompt gives it, and the text."""

    name: str
    text: str


@dataclass(frozen=True)
class PromptContext:
    """The workspace context of a prompt, as text (commented blocks with their files' names, what a model without
    repository tokens reads) and as files (a FIM model's repository format, llama-server's `input_extra`)."""

    text: str
    files: tuple[ContextFile, ...] = ()


@dataclass(frozen=True)
class GenerationJob:
    """One generation: the window around the cursor, the workspace context to put before it, and the limits."""

    document: str
    window: PromptWindow
    mode: CompletionMode
    rule: StopRule
    max_new: int
    #: Seconds of generation, counted from the first generated token (prompt processing is not counted: a cold
    #: prompt must not cost the suggestion), after which generation stops ("time").
    budget_s: float
    context: str = ""
    #: The same context by file, for the repository format of FIM models (empty: `context` as one chunk).
    context_files: tuple[ContextFile, ...] = ()
    #: A short window without context that may answer at once when `window` would need a long prefill (a backend
    #: that keeps no cache of ours ignores it).
    first_window: PromptWindow | None = None

    def describe(self) -> str:
        """The prompt's parts as the backend gets them, for a person: the workspace context, the window's prefix up
        to the cursor (marked), the suffix (a backend without fill-in-the-middle leaves it out), the limits."""
        window = self.window
        return (
            f"--- {self.document}: {self.mode.value}, at most {self.max_new} tokens, window from line "
            f"{window.anchor_line + 1}\n"
            f"--- context ({len(self.context)} chars)\n{self.context}"
            f"--- prefix ({len(window.prefix)} chars)\n{window.prefix}<CURSOR>\n"
            f"--- suffix ({len(window.suffix)} chars; only fill-in-the-middle models and servers get it)\n"
            f"{window.suffix}\n--- end of prompt"
        )


@dataclass(frozen=True)
class Generated:
    """What a backend generated (already cut by the stop rule) and how."""

    text: str
    stop: StopReason
    prompt_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    drafted_tokens: int = 0
    #: Who generated it, when a backend chose among others (completion_routing.py).
    backend: str = ""
    #: It came from the job's short first window: the full window is still to be evaluated.
    short_window: bool = False


@dataclass(frozen=True)
class Warmed:
    """What warming a place did: tokens evaluated, and whether the whole window is now ready (False: stopped early,
    what was evaluated is kept)."""

    tokens: int
    done: bool
    #: Nothing was evaluated, nor can be: the backend keeps no cache of ours (an OpenAI-compatible server), or
    #: `reuse_kv_cache` is off. Warming drops the place without counting it as prefilled.
    skipped: bool = False
