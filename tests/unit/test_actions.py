"""Agent actions as code actions: what is offered where, the tasks, and proposed changes as minimal edits."""

from __future__ import annotations

import random
from pathlib import Path

from lsprotocol import types

from cove.protocol.events import ProposedChange
from cove.server.actions.code_actions import apply_edits, line_edits, offered, task_for, workspace_edit
from cove.server.context.code_context import ParsedDocuments, scopes_at

SOURCE = '''import os


def documented(x):
    """Has one."""
    return x


def bare(a, b):
    total = a + b
    return total


class Box:
    def put(self, item):
        self.item = item
'''


def test_scopes_come_from_tree_sitter_with_their_docstrings() -> None:
    tree = ParsedDocuments().tree("file:///m.py", 1, SOURCE)
    assert tree is not None
    assert [(s.kind, s.name, s.has_docstring) for s in scopes_at(tree, 9, 4)] == [("function", "bare", False)]
    assert scopes_at(tree, 4, 8)[0].has_docstring
    assert [s.name for s in scopes_at(tree, 15, 8)] == ["put", "Box"]
    assert scopes_at(tree, 0, 0) == []
    assert ParsedDocuments().tree("file:///notes.txt", 1, SOURCE) is None  # no grammar: no scopes, no error


def test_scopes_and_doc_comments_in_other_languages() -> None:
    """A Go method with a doc comment and a TypeScript function without one: what the code actions offer."""
    go = "package main\n\n// Start serves.\nfunc (s *Server) Start() error {\n\treturn nil\n}\n"
    tree = ParsedDocuments().tree("file:///main.go", 1, go)
    assert tree is not None
    assert [(s.kind, s.name, s.has_docstring) for s in scopes_at(tree, 4, 1, "go")] == [("function", "Start", True)]
    ts = "export class Cache {\n  get(key: string) {\n    return key;\n  }\n}\n"
    tree = ParsedDocuments().tree("file:///cache.ts", 1, ts)
    assert tree is not None
    scopes = scopes_at(tree, 2, 4, "typescript")
    assert [(s.kind, s.name, s.has_docstring) for s in scopes] == [
        ("function", "get", False),
        ("class", "Cache", False),
    ]


def test_offers_fit_the_selection_diagnostics_and_enclosing_function() -> None:
    tree = ParsedDocuments().tree("file:///m.py", 1, SOURCE)
    assert tree is not None
    scope = scopes_at(tree, 9, 4)[0]
    cursor = types.Range(types.Position(9, 4), types.Position(9, 4))
    diagnostic = types.Diagnostic(cursor, "undefined name 'totl'", source="pyflakes")
    titles = [o.title for o in offered("file:///m.py", cursor, [diagnostic], scope)]
    assert titles == [
        "Cove: fix “undefined name 'totl'”",
        "Cove: explain bare",
        "Cove: write tests for bare",
        "Cove: add a docstring to bare",
    ]
    selection = types.Range(types.Position(9, 0), types.Position(10, 16))
    titles = [o.title for o in offered("file:///m.py", selection, [], None)]
    assert titles == ["Cove: explain the selection", "Cove: refactor the selection"]
    offer = offered("file:///m.py", cursor, [diagnostic], scope)[0]
    task = task_for(offer.action, offer.data, "m.py", SOURCE)
    assert "undefined name 'totl'" in task and "pyflakes" in task and "total = a + b" in task


def test_proposed_changes_become_minimal_edits_that_reproduce_the_text() -> None:
    rng = random.Random(7)
    words = ["a", "b", "c", "", "def f():", "    pass"]
    for _ in range(300):
        before = "\n".join(rng.choice(words) for _ in range(rng.randint(0, 8))) + rng.choice(["", "\n"])
        lines = before.splitlines(keepends=True)
        for _ in range(rng.randint(1, 3)):
            position = rng.randint(0, len(lines))
            if lines and rng.random() < 0.5:
                del lines[min(position, len(lines) - 1)]
            else:
                lines.insert(position, rng.choice(words) + rng.choice(["\n", ""]))
        after = "".join(lines)
        assert apply_edits(before, line_edits(before, after)) == after, (before, after)


def test_a_workspace_edit_touches_only_the_changed_lines_and_creates_new_files(tmp_path: Path) -> None:
    before = "def add(a, b):\n    return a - b\n\n\nx = 1\n"
    after = before.replace("a - b", "a + b")
    edit = workspace_edit([ProposedChange("calc.py", before, after)], tmp_path)
    assert edit.changes is not None
    [(uri, edits)] = edit.changes.items()
    assert uri.endswith("/calc.py") and len(edits) == 1
    assert (edits[0].range.start.line, edits[0].range.end.line, edits[0].new_text) == (1, 2, "    return a + b\n")
    created = workspace_edit([ProposedChange("tests/test_calc.py", None, "def test(): pass\n")], tmp_path)
    assert created.document_changes is not None and isinstance(created.document_changes[0], types.CreateFile)
