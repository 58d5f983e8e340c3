"""Which tokens of a long prompt a model can best afford to lose, by the code's structure.

An editor knows what a model rarely needs again: comments, blank lines, long string literals, and the bodies of
functions far above the cursor. It keeps what the code after them keeps using: imports, signatures, module-level
names, the scopes around the end of the prompt. Each line gets a `Rank`; a cache that must shrink drops the lowest
rank first and, within a rank, the line furthest back. The research path (`research/kv_policies.StructureStore`) and
llama.cpp's overflow policy (`[model] overflow = "structure"`) both rank through here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntEnum

import tree_sitter

from cove.languages import SCOPE_KINDS, grammar

#: Definition kinds whose bodies a distant reader can do without.
_BODY_KINDS = frozenset({"function", "method"})
#: Line comments of the languages Cove knows (used when no grammar reads the text).
_COMMENT_STARTS = ("#", "//", "/*", "*", "--", ";")
#: What may be open where a window cut from a file starts: a docstring, a block comment, a template string.
_OPENERS = ('"""', "'''", "/*", "`")


class Rank(IntEnum):
    """How much a line is worth keeping, lowest first."""

    FILLER = 0  # blank lines, comments, the inside of long string literals and docstrings
    BODY = 1  # the body of a function that does not hold the end of the prompt
    CODE = 2  # any other statement (module- or class-level code)
    HEADER = 3  # signatures, imports, the first line of a module-level statement (its names)
    ENCLOSING = 4  # the function holding the end of the prompt, and the headers of the scopes around it


def line_ranks(text: str, language: str | None = None) -> list[Rank]:
    """A rank for each line of `text` (split on "\\n"), by its grammar when Cove has one for `language`, else by
    indentation (the prompt of a chat, or a language without a grammar)."""
    lines = text.split("\n")
    if language is not None:
        try:
            return _ranks_by_grammar(text, lines, language)
        except KeyError:  # no grammar for it
            pass
    return _ranks_by_indent(lines)


def _ranks_by_grammar(text: str, lines: list[str], language: str) -> list[Rank]:
    code = grammar(language)
    source, tree = _parse_window(code.parse, text)
    ranks = [Rank.CODE] * len(lines)

    def mark(first: int, last: int, rank: Rank) -> None:
        for line in range(max(first, 0), min(last, len(lines) - 1) + 1):
            ranks[line] = rank

    for child in tree.root_node.children:
        mark(child.start_point[0], child.start_point[0], Rank.HEADER)
    definitions = code.symbols(tree, source).definitions
    last_line = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), 0)
    for definition in definitions:
        body = definition.node.child_by_field_name("body")
        body_line = body.start_point[0] if body is not None else definition.start_line + 1
        if definition.kind in _BODY_KINDS:
            # A one-line body (`def f(): return 1`) stays whole: it is its own header.
            mark(max(body_line, definition.start_line + 1), definition.end_line, Rank.BODY)
    for definition in definitions:
        body = definition.node.child_by_field_name("body")
        body_line = body.start_point[0] if body is not None else definition.start_line + 1
        header_end = max(definition.start_line, body_line - 1)
        mark(_decorated_start(definition.node), header_end, Rank.HEADER)
    _mark_filler(tree.root_node, mark)
    around = [d for d in definitions if d.kind in SCOPE_KINDS and d.start_line <= last_line <= d.end_line]
    for depth, scope in enumerate(sorted(around, key=lambda d: d.start_line, reverse=True)):
        if depth == 0 and scope.kind in _BODY_KINDS:
            mark(_decorated_start(scope.node), len(lines) - 1, Rank.ENCLOSING)
        else:
            body = scope.node.child_by_field_name("body")
            end = body.start_point[0] - 1 if body is not None else scope.start_line
            mark(_decorated_start(scope.node), max(end, scope.start_line), Rank.ENCLOSING)
    return _blank_lines_are_filler(lines, ranks)


def _parse_window(parse: Callable[[bytes], tree_sitter.Tree], text: str) -> tuple[bytes, tree_sitter.Tree]:
    """The parse of `text`, or of `text` after an opener (on its first line: line numbers stay) when it starts
    inside a string or comment: read as it is, such a text swaps code and strings up to its end (measured on
    windows at random lines of the standard library: 1 in 5). An opener counts when a twentieth of the text does
    not parse without it and eight times less does with it."""
    source = text.encode("utf-8")
    tree = parse(source)
    broken = _error_bytes(tree.root_node)
    if broken * 20 <= len(source):
        return source, tree
    best = (broken, source, tree)
    for opener in _OPENERS:
        candidate = (opener + text).encode("utf-8")
        other = parse(candidate)
        errors = _error_bytes(other.root_node)
        if errors * 8 < broken and errors < best[0]:
            best = (errors, candidate, other)
    return best[1], best[2]


def _error_bytes(root: tree_sitter.Node) -> int:
    """Bytes under the tree's ERROR nodes (a missing token counts one)."""
    total, stack = 0, [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            total += max(1, node.end_byte - node.start_byte)
        elif node.has_error:
            stack.extend(node.children)
    return total


def _decorated_start(node: tree_sitter.Node) -> int:
    """The first line of a definition with its decorators."""
    parent = node.parent
    if parent is not None and parent.type == "decorated_definition":
        return int(parent.start_point[0])
    return int(node.start_point[0])


def _mark_filler(root: tree_sitter.Node, mark: Callable[[int, int, Rank], None]) -> None:
    """Comments, docstrings and the inner lines of long strings."""
    stack = [root]
    while stack:
        node = stack.pop()
        first, last = node.start_point[0], node.end_point[0]
        if "comment" in node.type:
            if _alone_on_its_lines(node):
                mark(first, last, Rank.FILLER)
            continue
        if node.type == "expression_statement" and node.named_child_count == 1:
            only = node.named_children[0]
            if "string" in only.type:  # a docstring, or a string standing alone
                mark(first, last, Rank.FILLER)
                continue
        if "string" in node.type and last - first >= 2:
            mark(first + 1, last - 1, Rank.FILLER)
            continue
        stack.extend(node.children)


def _alone_on_its_lines(node: tree_sitter.Node) -> bool:
    """Whether nothing but the comment is on its first line (a trailing comment keeps its line's rank)."""
    previous = node.prev_sibling
    return previous is None or previous.end_point[0] < node.start_point[0]


def _ranks_by_indent(lines: list[str]) -> list[Rank]:
    ranks: list[Rank] = []
    last_top = 0
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(_COMMENT_STARTS):
            ranks.append(Rank.FILLER)
        elif line[0] in " \t":
            ranks.append(Rank.BODY)
        else:
            ranks.append(Rank.HEADER)
            last_top = index
    for index in range(last_top, len(lines)):
        if ranks[index] != Rank.FILLER:
            ranks[index] = Rank.ENCLOSING
    return ranks


def _blank_lines_are_filler(lines: list[str], ranks: list[Rank]) -> list[Rank]:
    return [Rank.FILLER if not line.strip() else rank for line, rank in zip(lines, ranks, strict=True)]


def token_lines(pieces: Sequence[str]) -> list[int]:
    """The line each token starts on, given the tokens' text."""
    lines, line = [], 0
    for piece in pieces:
        lines.append(line)
        line += piece.count("\n")
    return lines


def token_ranks(pieces: Sequence[str], language: str | None = None) -> list[int]:
    """A rank for each token: its line's (a token holding newlines belongs to the line it starts on)."""
    ranks = line_ranks("".join(pieces), language)
    return [int(ranks[line]) for line in token_lines(pieces)]


def choose_kept(ranks: Sequence[int], keep: int, sinks: int, recent: int) -> list[bool]:
    """Which of the tokens to keep so that `keep` remain: the first `sinks` and the last `recent` always, then the
    highest rank, and within a rank the latest — so whole lines go, lowest and furthest back first."""
    count = len(ranks)
    if keep >= count:
        return [True] * count
    kept = [False] * count
    protected = set(range(min(sinks, count))) | set(range(max(0, count - recent), count))
    for index in protected:
        kept[index] = True
    others = sorted((i for i in range(count) if i not in protected), key=lambda i: (ranks[i], i), reverse=True)
    for index in others[: max(0, keep - len(protected))]:
        kept[index] = True
    return kept


def dropped_spans(kept: Sequence[bool]) -> list[tuple[int, int]]:
    """The [start, end) runs of tokens not kept, in order."""
    spans: list[tuple[int, int]] = []
    start = None
    for index, keep in enumerate([*kept, True]):
        if not keep and start is None:
            start = index
        elif keep and start is not None:
            spans.append((start, index))
            start = None
    return spans
