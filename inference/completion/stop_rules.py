"""When a completion stops, and what of the generated text is kept.

Single-line completions end at the line's end; block completions end when the code leaves the block the cursor is in,
after a run of blank lines, or at a line limit; text (a docstring, a commit message: the local actions) ends at the
first of its stop strings. Text that repeats what already follows the cursor is trimmed.
"""

from __future__ import annotations

from cove.config import MultilineMode
from cove.protocol.jobs import BLOCK_OPENERS, CompletionMode

#: Text after the cursor that still lets a completion run to the line's end (auto-closed brackets and quotes).
CLOSERS = set(")]}\"'`;,: \t")


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
