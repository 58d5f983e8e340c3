"""What the code around a position is, from tree-sitter: the enclosing function or class, whether it has a
docstring, the file's imports. Parsed trees are cached per document version."""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter
import tree_sitter_python

PYTHON = tree_sitter.Language(tree_sitter_python.language())


@dataclass(frozen=True)
class Scope:
    """A function or class around a position: its kind, name and lines (0-based, inclusive)."""

    kind: str  # "function" | "class"
    name: str
    start_line: int
    end_line: int
    has_docstring: bool
    #: The first line of the body (0-based), where a docstring goes.
    body_line: int


class ParsedDocuments:
    """Trees of Python documents, by URI and version: a keystroke's request parses once, later ones reuse it."""

    def __init__(self, capacity: int = 64) -> None:
        self.parser = tree_sitter.Parser(PYTHON)
        self._trees: dict[str, tuple[int, tree_sitter.Tree]] = {}
        self.capacity = capacity

    def tree(self, uri: str, version: int, text: str) -> tree_sitter.Tree:
        cached = self._trees.get(uri)
        if cached is not None and cached[0] == version:
            return cached[1]
        tree = self.parser.parse(text.encode("utf-8"))
        self._trees.pop(uri, None)
        self._trees[uri] = (version, tree)
        while len(self._trees) > self.capacity:
            self._trees.pop(next(iter(self._trees)))
        return tree


def scopes_at(tree: tree_sitter.Tree, line: int, column: int = 0) -> list[Scope]:
    """The functions and classes that contain (line, column), innermost first."""
    node: tree_sitter.Node | None = tree.root_node.descendant_for_point_range((line, column), (line, column))
    found: list[Scope] = []
    while node is not None:
        if node.type in ("function_definition", "class_definition"):
            found.append(_scope(node))
        node = node.parent
    return found


def _scope(node: tree_sitter.Node) -> Scope:
    name_node = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    first = body.named_children[0] if body is not None and body.named_children else None
    has_docstring = bool(
        first is not None
        and first.type == "expression_statement"
        and first.named_children
        and first.named_children[0].type == "string"
    )
    return Scope(
        kind="function" if node.type == "function_definition" else "class",
        name=name_node.text.decode() if name_node is not None and name_node.text else "?",
        start_line=node.start_point[0],
        end_line=node.end_point[0],
        has_docstring=has_docstring,
        body_line=first.start_point[0] if first is not None else node.end_point[0],
    )
