"""The pieces a completion's workspace context is made of, and how they share one budget.

Every source (imported definitions, the project's index, the ring of recently seen code, the index's BM25
neighbours of the window, enclosing headers) gives `ContextItem`s. They are chosen most useful first — by rank, then
by distance from the cursor — and an item that does not fit is cut to its short form (its first line) rather than
dropped; the chosen ones are then placed in their fixed order, one heading per file, so that the block in front
of the window stays the same from keystroke to keystroke while its sources do not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cove.protocol.jobs import ContextFile

# Ranks: lower is chosen first. The order was decided by the cross-file benchmark's ablation (docs/completions.md):
# the index's neighbours of the window helped most, definitions looked up by name alone least (they distracted).
SCOPE, NEAR, NEIGHBOUR, SEEN, LOOKED_UP, RECENT, FILE, OTHER = range(8)

#: Lines around the cursor whose names count as "used near the cursor".
NEAR_BEFORE, NEAR_AFTER = 40, 10
_WORD = re.compile(r"[A-Za-z_]\w*")
#: What a heading adds to a file's path: a line number, a kind ("retry.py:4 (yanked)", "notes.py (recently edited)").
_HEADING_TAIL = re.compile(r"(:\d+)?( \([^)]*\))?$")

# Places: where each source's block goes, most stable first (the order of the second key is the source's own).
IMPORTS, INDEXED, RING, NEIGHBOURS, EDITS, HEADERS = range(6)


@dataclass(frozen=True)
class ContextItem:
    """One piece of context: its rank, its place in the block, its distance from the cursor, its text."""

    rank: int
    order: tuple[int, int]
    #: Among items of one rank, nearer (in lines from the cursor, or a source's own measure) is chosen first.
    distance: int
    heading: str
    text: str
    short: str = ""
    #: The name the item defines ("" for snippets and headers).
    name: str = ""


def pack(items: list[ContextItem], budget: int, comment: str) -> str:
    """The most useful items that fit in `budget` characters (cut to their short form where they do not), placed
    in their fixed order with one heading per file."""
    return render(choose(items, budget, comment), comment)


def choose(items: list[ContextItem], budget: int, comment: str) -> list[tuple[str, str]]:
    """The most useful items that fit in `budget` characters once rendered, as (heading, text) in their fixed
    order."""
    chosen: dict[tuple[int, int], str] = {}
    headed: set[str] = set()
    used = 0
    for item in sorted(items, key=lambda item: (item.rank, item.distance, item.order)):
        if item.text in chosen.values():
            continue  # two sources found the same code (a yanked definition the index has too): once is enough
        heading_cost = len(f"{comment} {item.heading}\n") if item.heading and item.heading not in headed else 0
        for text in (item.text, item.short):
            cost = heading_cost + len(text) + 1
            if text and used + cost <= budget:
                chosen[item.order] = text
                used += cost
                if item.heading:
                    headed.add(item.heading)
                break
    by_order = {item.order: item for item in items}
    return [(by_order[order].heading, chosen[order]) for order in sorted(chosen)]


def render(blocks: list[tuple[str, str]], comment: str) -> str:
    """Chosen items as text: each under its heading (a comment line), one heading for consecutive items of a file."""
    out: list[str] = []
    last: str | None = None
    for heading, text in blocks:
        if heading and heading != last:
            out.append(f"{comment} {heading}\n")
        last = heading
        out.append(text + "\n")
    return "".join(out)


def as_files(blocks: list[tuple[str, str]], own: str) -> tuple[ContextFile, ...]:
    """Chosen items as a file each for a FIM model's repository format: consecutive items of one file joined, named
    by the file's path (a heading's line number and kind left out); items without a heading (the enclosing
    headers) are the document's own (`own`)."""
    files: list[ContextFile] = []
    for heading, text in blocks:
        name = _HEADING_TAIL.sub("", heading) if heading else own
        if files and files[-1].name == name:
            files[-1] = ContextFile(name, f"{files[-1].text}\n{text}")
        else:
            files.append(ContextFile(name, text))
    return tuple(files)


def names_near(text: str, anchor_line: int, cursor: int | None) -> dict[str, int]:
    """The names used around the cursor, each with its distance in lines from the cursor's line (attribute names
    too: `seg.apply_style` uses `apply_style`); without a cursor, in the window's first lines."""
    if cursor is None:
        cursor = line_end(text, 0, anchor_line)
    start = text.rfind("\n", 0, cursor)
    for _ in range(NEAR_BEFORE):
        if start <= 0:
            break
        start = text.rfind("\n", 0, start)
    lines = text[max(start, 0) : line_end(text, cursor, NEAR_AFTER)].split("\n")
    here = text.count("\n", max(start, 0), cursor)
    near: dict[str, int] = {}
    for index, line in enumerate(lines):
        for name in _WORD.findall(line):
            near[name] = min(near.get(name, 10_000), abs(index - here))
    return near


def line_end(text: str, offset: int, lines: int) -> int:
    """The offset `lines` line breaks after `offset` (the text's end if there are fewer)."""
    for _ in range(lines):
        found = text.find("\n", offset)
        if found == -1:
            return len(text)
        offset = found + 1
    return offset
