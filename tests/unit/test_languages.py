"""Each language's grammar and query (cove/languages.toml, cove/queries) on a real snippet of that language: the
definitions with their kinds and header lines, the scopes around a line, references and imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove import languages

DATA = Path(__file__).parent.parent / "data" / "languages"

#: Per language: its snippet in tests/data/languages (small real-world shapes of code, as that language's projects
#: write it), the definitions the query must find (kind, name) in order, a line inside the innermost scope and the
#: scopes there (innermost first), a referenced name, an import's text.
SNIPPETS: dict[str, tuple[str, list[tuple[str, str]], int, list[str], str, str]] = {
    "python": (
        "server.py",
        [("constant", "LIMIT"), ("class", "Server"), ("function", "handle")],
        8,
        ["handle", "Server"],
        "join",
        "from .config import Config",
    ),
    "javascript": (
        "app.js",
        [("constant", "VERSION"), ("class", "Cache"), ("method", "get"), ("function", "load")],
        6,
        ["get", "Cache"],
        "readFile",
        "import { readFile } from 'node:fs/promises';",
    ),
    "typescript": (
        "client.ts",
        [
            ("interface", "Reply"),
            ("type", "Handler"),
            ("class", "Client"),
            ("method", "constructor"),
            ("method", "send"),
        ],
        12,
        ["send", "Client"],
        "fetchReply",
        "import type { Options } from './options';",
    ),
    "tsx": (
        "Button.tsx",
        [("interface", "Props"), ("function", "Button")],
        5,
        ["Button"],
        "track",
        "import React from 'react';",
    ),
    "go": (
        "server.go",
        [("constant", "Port"), ("class", "Server"), ("interface", "Store"), ("method", "Start"), ("function", "main")],
        19,
        ["Start"],
        "ListenAndServe",
        'import (\n\t"fmt"\n\t"net/http"\n)',
    ),
    "rust": (
        "lib.rs",
        [
            ("constant", "MAX"),
            ("class", "Cache"),
            ("interface", "Store"),
            ("function", "get"),
            ("implementation", "Cache"),
            ("function", "new"),
        ],
        14,
        ["new", "Cache"],
        "new",
        "use std::collections::HashMap;",
    ),
    "java": (
        "Server.java",
        [
            ("class", "Server"),
            ("constant", "PORT"),
            ("method", "Server"),
            ("method", "start"),
            ("interface", "Handler"),
            ("method", "handle"),
        ],
        10,
        ["start", "Server"],
        "println",
        "import java.util.List;",
    ),
    "c": (
        "buffer.c",
        [
            ("constant", "CAPACITY"),
            ("type", "buffer_t"),
            ("class", "buffer"),
            ("function", "grow"),
            ("function", "buffer_append"),
        ],
        12,
        ["grow"],
        "realloc",
        '#include "buffer.h"',
    ),
    "cpp": (
        "cache.cpp",
        [("module", "store"), ("class", "Cache"), ("method", "get"), ("function", "get")],
        13,
        ["get", "store"],
        "at",
        "#include <map>",
    ),
    "ruby": (
        "cache.rb",
        [("module", "Store"), ("class", "Cache"), ("method", "initialize"), ("method", "load")],
        11,
        ["load", "Cache", "Store"],
        "parse",
        "require 'json'",
    ),
    "lua": (
        "cove.lua",
        [("function", "setup"), ("method", "complete"), ("function", "debounce")],
        9,
        ["complete"],
        "merge",
        "require('cove.util')",
    ),
    "bash": (
        "install.sh",
        [("constant", "PREFIX"), ("function", "install_binary")],
        8,
        ["install_binary"],
        "mkdir",
        "source ./lib.sh",
    ),
}


def test_every_language_in_the_table_has_a_snippet() -> None:
    assert set(languages.names()) == set(SNIPPETS)
    assert languages.language_of("src/App.TSX") == "tsx" and languages.language_of("notes.txt") is None
    assert languages.grammar_for("file:///w/main%20file.go") is languages.grammar("go")


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_definitions_scopes_references_and_imports(name: str) -> None:
    file, defined, line, scopes, referenced, imported = SNIPPETS[name]
    source = (DATA / file).read_text()
    grammar = languages.grammar_for(file)
    assert grammar is not None and grammar.name == name
    data = source.encode()
    tree = grammar.parse(data)
    symbols = grammar.symbols(tree, data)
    assert [(d.kind, d.name) for d in symbols.definitions] == defined
    for definition in symbols.definitions:
        assert definition.name in "\n".join(source.split("\n")[definition.start_line : definition.end_line + 1])
        assert source.split("\n")[definition.start_line].rstrip() == definition.header
    assert [d.name for d in grammar.scopes_at(tree, data, line)] == scopes
    assert referenced in [name for name, _ in symbols.references]
    assert any(text.strip() == imported.strip() for text in symbols.imports), symbols.imports
