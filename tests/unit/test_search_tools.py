"""Listing, searching and symbols over a real temporary repository with .gitignore files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.agent.file_tools import ToolError
from cove.agent.safety import ToolDenied, Workspace
from cove.agent.search_tools import GitIgnored, find_symbol, list_files, list_symbols, search, walk_files


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "build").mkdir()
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "src" / ".gitignore").write_text("generated_*.py\n")
    core = "class Parser:\n    def parse(self, text):\n        return text  # TODO handle comments\n"
    (root / "src" / "pkg" / "core.py").write_text(core + "\n\ndef main():\n    pass\n")
    (root / "src" / "generated_api.py").write_text("def main():\n    pass\n")
    (root / "build" / "out.py").write_text("def main(): pass\n")
    (root / "debug.log").write_text("TODO in a log\n")
    (root / "README.md").write_text("TODO: write docs\n")
    return Workspace.at(root)


def test_list_files_honours_every_gitignore(workspace: Workspace) -> None:
    assert list_files(workspace).split("\n") == [".gitignore", "README.md", "src/.gitignore", "src/pkg/core.py"]
    assert list_files(workspace, "src") == "src/.gitignore\nsrc/pkg/core.py"


def test_search_finds_lines_outside_ignored_files(workspace: Workspace) -> None:
    assert search(workspace, r"TODO").split("\n") == [
        "README.md:1: TODO: write docs",
        "src/pkg/core.py:3: return text  # TODO handle comments",
    ]
    with pytest.raises(ToolError, match="invalid regular expression"):
        search(workspace, "(")
    with pytest.raises(ToolDenied):
        search(workspace, "x", "../")


def test_symbols_from_tree_sitter(workspace: Workspace) -> None:
    assert list_symbols(workspace, "src/pkg/core.py").split("\n") == [
        "     1  class Parser",
        "     2  function parse",
        "     6  function main",
    ]
    assert find_symbol(workspace, "main") == "src/pkg/core.py:6: function main"
    assert "no definition named" in find_symbol(workspace, "absent")


def test_symbols_in_every_language(workspace: Workspace) -> None:
    """list_symbols and find_symbol read Go, TypeScript, Rust ... as they read Python; other files are refused."""
    (workspace.root / "cmd").mkdir()
    (workspace.root / "cmd" / "main.go").write_text("package main\n\nfunc main() {\n}\n\ntype Parser struct{}\n")
    (workspace.root / "web.ts").write_text("export interface Parser {\n  parse(text: string): void;\n}\n")
    (workspace.root / "lib.rs").write_text("pub fn parse(text: &str) -> usize {\n    text.len()\n}\n")
    assert list_symbols(workspace, "cmd/main.go").split("\n") == ["     3  function main", "     6  class Parser"]
    assert find_symbol(workspace, "Parser").split("\n") == [  # a folder's files, then its subfolders
        "web.ts:1: interface Parser",
        "cmd/main.go:6: class Parser",
        "src/pkg/core.py:1: class Parser",
    ]
    assert find_symbol(workspace, "parse").split("\n") == [
        "lib.rs:1: function parse",
        "web.ts:2: method parse",
        "src/pkg/core.py:2: function parse",
    ]
    with pytest.raises(ToolError, match=r"no grammar for README\.md"):
        list_symbols(workspace, "README.md")


def test_one_path_is_ignored_as_the_walk_ignores_it(workspace: Workspace) -> None:
    """GitIgnored (the index's file watcher) agrees with walk_files on every file, and on paths under ignored
    folders and .git."""
    ignored = GitIgnored(workspace)
    walked = set(walk_files(workspace))
    for path in workspace.root.rglob("*"):
        if path.is_file():
            assert ignored(path) == (path not in walked), path
    assert ignored(workspace.root / ".git" / "config") and not ignored(workspace.root / "src" / "pkg" / "new.py")
