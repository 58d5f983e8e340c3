"""The languages Cove reads structurally: a tree-sitter grammar and a tags-style query per language
(`languages.toml`, `queries/*.scm`), and what they find in a file — definitions (name, kind, span, header line),
references and imports. Code context, code actions' scopes, the agent's symbol tools and the index all read code
through here, so a language is added by a table row and a query file, not by code.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import keyword
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePath

import tree_sitter

#: Kinds of definition whose bodies hold other definitions (a scope around a position).
SCOPE_KINDS = frozenset({"function", "method", "class", "interface", "implementation", "module"})


@dataclass(frozen=True)
class Definition:
    """A named definition: its kind (the query's `@definition.KIND`), name and lines (0-based, inclusive)."""

    name: str
    kind: str
    start_line: int
    end_line: int
    #: The definition's first line, as written (a header for a prompt).
    header: str
    node: tree_sitter.Node


@dataclass(frozen=True)
class Symbols:
    """What a query finds in one tree: definitions in source order, referenced names with their lines (0-based),
    import statements' text."""

    definitions: list[Definition]
    references: list[tuple[str, int]]
    imports: list[str]


class Grammar:
    """One language: its parser and query."""

    def __init__(self, name: str, language: tree_sitter.Language, query_source: str, comment: str = "#") -> None:
        self.name = name
        self.language = language
        #: How a line comment starts.
        self.comment = comment
        self.query = tree_sitter.Query(language, query_source)

    def parser(self) -> tree_sitter.Parser:
        return tree_sitter.Parser(self.language)

    def parse(self, source: bytes) -> tree_sitter.Tree:
        return self.parser().parse(source)

    def symbols(self, tree: tree_sitter.Tree, source: bytes) -> Symbols:
        definitions: list[Definition] = []
        references: list[tuple[str, int]] = []
        imports: list[str] = []
        for _, captures in tree_sitter.QueryCursor(self.query).matches(tree.root_node):
            names = captures.get("name", [])
            for capture, nodes in captures.items():
                kind = capture.removeprefix("definition.")
                if capture.startswith("definition.") and names and names[0].text:
                    node = nodes[0]
                    definitions.append(
                        Definition(
                            names[0].text.decode("utf-8", "replace"),
                            kind,
                            node.start_point[0],
                            node.end_point[0],
                            _line(source, node.start_byte),
                            node,
                        )
                    )
                elif capture.startswith("reference.") and names and names[0].text:
                    references.append((names[0].text.decode("utf-8", "replace"), names[0].start_point[0]))
                elif capture == "import" and nodes[0].text:
                    imports.append(nodes[0].text.decode("utf-8", "replace"))
        definitions.sort(key=lambda d: (d.node.start_byte, -d.node.end_byte))
        unique = {(d.node.start_byte, d.name): d for d in definitions}  # one node matched by two patterns
        return Symbols(list(unique.values()), references, imports)

    def scopes_at(self, tree: tree_sitter.Tree, source: bytes, line: int) -> list[Definition]:
        """The functions, classes, ... whose span holds `line`, innermost first."""
        definitions = self.symbols(tree, source).definitions
        around = [d for d in definitions if d.kind in SCOPE_KINDS and d.start_line <= line <= d.end_line]
        return sorted(around, key=lambda d: d.start_line, reverse=True)


def _line(source: bytes, start: int) -> str:
    end = source.find(b"\n", start)
    line_start = source.rfind(b"\n", 0, start) + 1
    return source[line_start : end if end != -1 else len(source)].decode("utf-8", "replace").rstrip()


@functools.cache
def _table() -> dict[str, dict[str, object]]:
    return tomllib.loads(resources.files("cove").joinpath("languages.toml").read_text())


@functools.cache
def _by_extension() -> dict[str, str]:
    return {str(ext): name for name, row in _table().items() for ext in row["extensions"]}  # type: ignore[attr-defined]


def names() -> list[str]:
    """Every language with a grammar."""
    return list(_table())


def language_of(path: str) -> str | None:
    """The language of a file by its name (a path or a URI), None when Cove has no grammar for it."""
    return _by_extension().get(PurePath(path).suffix.lower())


@functools.cache
def grammar(name: str) -> Grammar:
    """The grammar named in languages.toml (loaded once); KeyError for one that is not there."""
    row = _table()[name]
    module, _, function = str(row["grammar"]).partition(":")
    language = tree_sitter.Language(getattr(importlib.import_module(module), function or "language")())
    query = resources.files("cove").joinpath("queries", f"{row.get('query', name)}.scm").read_text()
    return Grammar(name, language, query, str(row["comment"]))


_PYTHON_COMMON = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls"}


@functools.cache
def common_words(name: str) -> frozenset[str]:
    """A language's keywords and ubiquitous builtins (languages.toml's `common`; Python's own modules for Python):
    two pieces of code that share only these are not related."""
    if name == "python":
        return _PYTHON_COMMON
    return frozenset(str(word) for word in _table().get(name, {}).get("common", []))  # type: ignore[attr-defined]


def grammar_for(path: str) -> Grammar | None:
    """The grammar for a file by its name, None when there is none."""
    name = language_of(path)
    return grammar(name) if name is not None else None
