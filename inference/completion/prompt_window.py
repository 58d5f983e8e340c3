"""The slice of a document that a completion prompt holds.

The window's start is anchored on a line boundary and kept where it is from keystroke to keystroke, so that the
prompt of the next request begins with the same tokens as the last one and the model's KV cache of that prefix is
reused. A window that slid with the cursor would change its first tokens on every keystroke and lose the cache.
"""

from __future__ import annotations

import bisect

from cove.protocol.jobs import PromptWindow

#: After re-anchoring, the prefix fills at most this share of the budget, leaving room to type before the next move.
REANCHOR_FILL = 0.7


def line_starts(text: str) -> list[int]:
    """Offsets at which each line of `text` starts."""
    starts = [0]
    index = text.find("\n")
    while index != -1:
        starts.append(index + 1)
        index = text.find("\n", index + 1)
    return starts


def choose_anchor(starts: list[int], cursor: int, previous: int | None, max_prefix_chars: int) -> int:
    """The line the prefix starts at: the previous anchor while it still fits, else a new one with headroom."""
    cursor_line = bisect.bisect_right(starts, cursor) - 1
    if previous is not None and previous <= cursor_line and cursor - starts[previous] <= max_prefix_chars:
        return previous
    target = cursor - int(max_prefix_chars * REANCHOR_FILL)
    if target <= 0:
        return 0
    # The first line that starts at or after the target keeps the prefix within the fill share.
    return min(bisect.bisect_left(starts, target), cursor_line)


def build_window(
    text: str,
    cursor: int,
    previous_anchor: int | None,
    max_prefix_chars: int,
    max_suffix_chars: int,
    starts: list[int] | None = None,
) -> PromptWindow:
    """Cut the prompt window for a cursor at character offset `cursor` of `text`."""
    starts = line_starts(text) if starts is None else starts
    anchor = choose_anchor(starts, cursor, previous_anchor, max_prefix_chars)
    prefix = text[starts[anchor] : cursor]
    if len(prefix) > max_prefix_chars:
        # One very long line: keep its end; the cache cannot help such a line anyway.
        prefix = prefix[-max_prefix_chars:]
    suffix = text[cursor : cursor + max_suffix_chars]
    line_start = text.rfind("\n", 0, cursor) + 1
    line_end = text.find("\n", cursor)
    line_end = len(text) if line_end == -1 else line_end
    return PromptWindow(
        prefix=prefix,
        suffix=suffix,
        anchor_line=anchor,
        line_prefix=text[line_start:cursor],
        line_suffix=text[cursor:line_end],
    )


def offset_of(text: str, line: int, character: int) -> int:
    """Character offset of a zero-based (line, character) position; positions past a line's end clamp to it."""
    starts = line_starts(text)
    if line >= len(starts):
        return len(text)
    end = starts[line + 1] - 1 if line + 1 < len(starts) else len(text)
    return min(starts[line] + character, end)
