"""Code the user has recently seen or touched, as completion context: a ring of chunks and the last edit places.

The ring follows llama.vscode's: pieces of code the user viewed (where the cursor rested: `cove/cursor`), yanked or
selected (`cove/yanked`) and saved (the place of the last edit at `didSave`), at most RING_SIZE of them, a new chunk
replacing the ones it mostly repeats (the share of lines they have in common). A completion takes the chunks of its own
language that share names with the code near the cursor, most shared first (a chunk of its own document only when
it lies outside the window, which the model sees anyway). Chunks are placed in the order they entered the ring, so
the block changes only when a chunk enters or leaves. Apart from the ring, the place each document was last edited
gives a snippet to the other documents of its language ("recently edited").
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cove import languages
from cove.server.context.context_items import EDITS, RECENT, RING, SEEN, ContextItem

#: Chunks kept in the ring.
RING_SIZE = 16
#: Lines of a viewed or saved place (around the cursor); a yanked range is cut to YANK_LINES.
CHUNK_LINES = 16
YANK_LINES = 40
#: A new chunk replaces those it shares more than this share of lines with (of the smaller one's lines).
REPLACES = 0.5
#: Recently edited documents whose snippets may be included, and the snippet's lines.
RECENT_FILES = 2
SNIPPET_LINES = 12
_WORD = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class SeenChunk:
    """A piece of a document the user viewed, yanked or saved."""

    uri: str
    kind: str
    start_line: int
    text: str
    lines: frozenset[str]
    words: frozenset[str]
    #: Its place in the ring: chunks are placed in the order they entered.
    entered: int
    language: str | None = None

    @property
    def end_line(self) -> int:
        return self.start_line + self.text.count("\n")


@dataclass
class _Edited:
    text: str
    line: int
    when: float = field(default_factory=time.monotonic)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """How much two chunks repeat each other: the share of the smaller one's lines that the other holds too (a
    yank inside a viewed place repeats it wholly)."""
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


class RecentCode:
    """The ring of seen chunks and the documents' last edit places, for the context of any document."""

    def __init__(self, ring_size: int = RING_SIZE) -> None:
        self.ring_size = ring_size
        self._ring: list[SeenChunk] = []
        self._edited: dict[str, _Edited] = {}
        self._entered = itertools.count()

    def note_edit(self, uri: str, text: str, line: int) -> None:
        """Remember where a document was last edited (cheap: called on every change)."""
        self._edited[uri] = _Edited(text, line)
        if len(self._edited) > 32:
            oldest = min(self._edited, key=lambda key: self._edited[key].when)
            del self._edited[oldest]

    def note_seen(self, uri: str, text: str, line: int, kind: str, end_line: int | None = None) -> None:
        """A place the user looked at (`kind` "viewed", "saved": CHUNK_LINES around `line`) or a range they yanked
        (lines `line` to `end_line`). A chunk of blank lines, one the ring holds already, or a view of a place yanked
        or saved changes nothing."""
        lines = text.split("\n")
        if end_line is None:
            start = max(0, line - CHUNK_LINES // 2)
            end = min(len(lines), start + CHUNK_LINES)
        else:
            start = max(0, min(line, end_line))
            end = min(len(lines), max(line, end_line) + 1, start + YANK_LINES)
        body = lines[start:end]
        while body and not body[-1].strip():
            body.pop()
        stripped = frozenset(row.strip() for row in body if row.strip())
        if len(stripped) < 2:
            return
        if any(chunk.uri == uri and chunk.lines == stripped for chunk in self._ring):
            return  # seen again: keep its place, so the context does not change
        similar = [chunk for chunk in self._ring if similarity(chunk.lines, stripped) > REPLACES]
        if kind == "viewed" and any(chunk.kind != "viewed" for chunk in similar):
            return  # a place yanked or saved is not made a mere view by looking at it
        kept = [chunk for chunk in self._ring if chunk not in similar]
        chunk_text = "\n".join(body)
        words = frozenset(_WORD.findall(chunk_text))
        language = languages.language_of(uri)
        kept.append(SeenChunk(uri, kind, start, chunk_text, stripped, words, next(self._entered), language))
        self._ring = kept[-self.ring_size :]

    def note_saved(self, uri: str) -> None:
        """A saved document: the place it was last edited enters the ring."""
        edit = self._edited.get(uri)
        if edit is not None:
            self.note_seen(uri, edit.text, edit.line, "saved")

    def forget(self, uri: str) -> None:
        """A closed document: its edit place goes (the chunks it gave stay in the ring)."""
        self._edited.pop(uri, None)

    def chunks(self) -> list[SeenChunk]:
        """The ring, oldest first."""
        return list(self._ring)

    def items(
        self, uri: str, language: str, near: dict[str, int], window: range, label: Callable[[str], str]
    ) -> Iterator[ContextItem]:
        """Context items for a completion in `uri` (its window covering the lines `window`): the ring's chunks of
        `language` that share names with the code near the cursor, and the other documents' last edit places."""
        for chunk in self._ring:
            if chunk.language != language:
                continue
            if chunk.uri == uri and chunk.start_line < window.stop and chunk.end_line >= window.start:
                continue  # the model sees the window itself
            shared = sum(1 / (1 + near[name]) for name in chunk.words & near.keys() if len(name) >= 3)
            if shared == 0:
                continue
            heading = f"{label(chunk.uri)}:{chunk.start_line + 1} ({chunk.kind})"
            rows = chunk.text.split("\n")
            short = "\n".join(rows[: min(4, len(rows))])
            yield ContextItem(SEEN, (RING, chunk.entered), -int(shared * 1000), heading, chunk.text, short)
        yield from self._recent(uri, language)

    def _recent(self, uri: str, language: str) -> Iterator[ContextItem]:
        """Snippets around the last edit of the documents of the same language edited most recently."""
        others = sorted(
            (
                (key, edit)
                for key, edit in self._edited.items()
                if key != uri and languages.language_of(key) == language
            ),
            key=lambda item: -item[1].when,
        )[:RECENT_FILES]
        for index, (key, edit) in enumerate(others):
            lines = edit.text.split("\n")
            start = max(0, edit.line - SNIPPET_LINES // 2)
            snippet = "\n".join(lines[start : start + SNIPPET_LINES])
            short = "\n".join(lines[max(0, edit.line - 2) : edit.line + 2])
            heading = f"{key.rsplit('/', 1)[-1]} (recently edited)"
            yield ContextItem(RECENT, (EDITS, index), 0, heading, snippet, short)
