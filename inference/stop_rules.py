"""When a completion stops, and what of the generated text is kept.

Single-line completions end at the line's end; block completions end when the code leaves the block the cursor is in,
after a run of blank lines, or at a line limit; text (a docstring, a commit message: the local actions) ends at the
first of its stop strings. Text that repeats what already follows the cursor is trimmed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cove.config import MultilineMode

#: Characters that open a block when they end a line (Python's colon, C-like braces, open brackets).
BLOCK_OPENERS = (":", "{", "(", "[")
#: Text after the cursor that still lets a completion run to the line's end (auto-closed brackets and quotes).
CLOSERS = set(")]}\"'`;,: \t")


class CompletionMode(enum.Enum):
    """How much text a completion may cover."""

    LINE = "line"
    BLOCK = "block"
    #: Prose or code that is not typed at the cursor (local actions): it ends at one of `StopRule.stop_at`.
    TEXT = "text"


def choose_mode(line_prefix: str, line_suffix: str, setting: MultilineMode) -> CompletionMode:
    """Block mode on an empty line or after a line that opens a block, with nothing but closers after the cursor."""
    if setting == "never":
        return CompletionMode.LINE
    if setting == "always":
        return CompletionMode.BLOCK
    if line_suffix.strip():
        return CompletionMode.LINE
    stripped = line_prefix.strip()
    if not stripped or stripped.endswith(BLOCK_OPENERS):
        return CompletionMode.BLOCK
    return CompletionMode.LINE


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


def trim_suffix_overlap(completion: str, line_suffix: str, suffix: str) -> str:
    """Drop the end of a completion that repeats text already after the cursor."""
    if "\n" not in completion:
        head = line_suffix.strip()
        for size in range(min(len(completion), len(head)), 0, -1):
            if completion.endswith(head[:size]) and set(head[:size]) <= CLOSERS:
                return completion[:-size]
        return completion
    # Whole lines at the end of a block that equal the lines right after the cursor's line are dropped.
    lines = completion.split("\n")
    following = [line for line in suffix.split("\n")[1:] if line.strip()]
    while lines and following and lines[-1].strip() and lines[-1].strip() == following[0].strip():
        lines.pop()
        following.pop(0)
    return "\n".join(lines).rstrip()
