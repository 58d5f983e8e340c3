"""File tools on a real temporary workspace: reads, exact edits with diffs, confinement, undo step by step."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.agent.file_tools import MAX_READ_CHARS, FileTools, ToolError
from cove.agent.safety import ToolDenied, Workspace


@pytest.fixture
def tools(tmp_path: Path) -> FileTools:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n")
    return FileTools(Workspace.at(root))


def test_read_file_numbers_lines_and_takes_ranges(tools: FileTools) -> None:
    assert tools.read_file("calc.py", 2, 2) == "     2\t    return a - b"
    with pytest.raises(ToolError, match="start must be between"):
        tools.read_file("calc.py", 99)
    with pytest.raises(ToolError, match=r"no such file: nope\.py"):
        tools.read_file("nope.py")


def test_long_reads_are_cut_with_directions(tools: FileTools) -> None:
    tools.write_file("big.txt", "\n".join("x" * 100 for _ in range(1000)))
    out = tools.read_file("big.txt")
    assert len(out) <= MAX_READ_CHARS + 100
    assert "read on with start=" in out


def test_edit_needs_exactly_one_match_and_returns_a_diff(tools: FileTools) -> None:
    with pytest.raises(ToolError, match="matches 2 times"):
        tools.edit_file("calc.py", "return a - b", "return a + b")
    with pytest.raises(ToolError, match=r"not found in calc\.py"):
        tools.edit_file("calc.py", "return a * b", "x")
    diff = tools.edit_file("calc.py", "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b")
    assert "-    return a - b" in diff and "+    return a + b" in diff
    assert tools.read_file("calc.py", 2, 2).endswith("return a + b")


def test_undo_reverts_step_by_step_including_created_files(tools: FileTools) -> None:
    original = (tools.workspace.root / "calc.py").read_text()
    tools.edit_file("calc.py", "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b")
    tools.write_file("tests/test_calc.py", "from calc import add\n")
    assert "removed tests/test_calc.py" in tools.undo()
    assert not (tools.workspace.root / "tests" / "test_calc.py").exists()
    assert "restored calc.py" in tools.undo()
    assert (tools.workspace.root / "calc.py").read_text() == original
    with pytest.raises(ToolError, match="nothing to undo"):
        tools.undo()


def test_tools_refuse_paths_outside_the_workspace(tools: FileTools) -> None:
    with pytest.raises(ToolDenied):
        tools.write_file("../escape.txt", "x")
    with pytest.raises(ToolDenied):
        tools.read_file("/etc/hostname")
    assert not (tools.workspace.root.parent / "escape.txt").exists()
