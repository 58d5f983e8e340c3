"""What the code around a position is, from tree-sitter: the enclosing function or class, whether it has a
docstring (Python) or a doc comment (the rest), in every language of cove/languages.toml. Parsed trees are cached
per document version."""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from cove import languages

PYTHON = languages.grammar("python").language


@dataclass(frozen=True)
class EnclosingScope:
    """A function or class around a position: its kind, name and lines (0-based, inclusive)."""

    kind: str  # "function" | "class"
    name: str
    start_line: int
    end_line: int
    has_docstring: bool
    #: The first line of the body (0-based), where a docstring goes.
    body_line: int


class ParsedDocuments:
    """Trees of documents, by URI and version, each parsed with its language's grammar: a keystroke's request
    parses once, later ones reuse it."""

    def __init__(self, capacity: int = 64) -> None:
        self._trees: dict[str, tuple[int, tree_sitter.Tree]] = {}
        self.capacity = capacity

    def tree(self, uri: str, version: int, text: str) -> tree_sitter.Tree | None:
        """The document's tree; None for a language Cove has no grammar for."""
        grammar = languages.grammar_for(uri)
        if grammar is None:
            return None
        cached = self._trees.get(uri)
        if cached is not None and cached[0] == version:
            return cached[1]
        tree = grammar.parse(text.encode("utf-8"))
        self._trees.pop(uri, None)
        self._trees[uri] = (version, tree)
        while len(self._trees) > self.capacity:
            self._trees.pop(next(iter(self._trees)))
        return tree


def scopes_at(tree: tree_sitter.Tree, line: int, column: int = 0, language: str = "python") -> list[EnclosingScope]:
    """The functions and classes that contain (line, column), innermost first."""
    if language != "python":
        source = tree.root_node.text or b""
        return [_generic_scope(d) for d in languages.grammar(language).scopes_at(tree, source, line)]
    node: tree_sitter.Node | None = tree.root_node.descendant_for_point_range((line, column), (line, column))
    found: list[EnclosingScope] = []
    while node is not None:
        if node.type in ("function_definition", "class_definition"):
            found.append(_scope(node))
        node = node.parent
    return found


def _generic_scope(definition: languages.Definition) -> EnclosingScope:
    """A scope from a language's query: a doc comment is a comment on the lines right above the definition."""
    node = definition.node
    before = node.prev_named_sibling
    while before is None and node.parent is not None and node.parent.start_point[0] == definition.start_line:
        node = node.parent  # an export statement, a decorator list: the comment is above the whole
        before = node.prev_named_sibling
    documented = before is not None and "comment" in before.type and before.end_point[0] >= definition.start_line - 1
    return EnclosingScope(
        kind="function" if definition.kind in ("function", "method") else "class",
        name=definition.name,
        start_line=definition.start_line,
        end_line=definition.end_line,
        has_docstring=documented,
        body_line=definition.start_line,
    )


def _scope(node: tree_sitter.Node) -> EnclosingScope:
    name_node = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    first = body.named_children[0] if body is not None and body.named_children else None
    has_docstring = bool(
        first is not None
        and first.type == "expression_statement"
        and first.named_children
        and first.named_children[0].type == "string"
    )
    return EnclosingScope(
        kind="function" if node.type == "function_definition" else "class",
        name=name_node.text.decode() if name_node is not None and name_node.text else "?",
        start_line=node.start_point[0],
        end_line=node.end_point[0],
        has_docstring=has_docstring,
        body_line=first.start_point[0] if first is not None else node.end_point[0],
    )
