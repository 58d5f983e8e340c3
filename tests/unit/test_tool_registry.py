"""The tool registry over a real temporary workspace: schemas, lazy discovery, argument checks, dispatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.agent.file_tools import FileTools, ToolError
from cove.agent.safety import Workspace
from cove.agent.tool_registry import ToolRegistry


@pytest.fixture
def registry(tmp_path: Path) -> ToolRegistry:
    (tmp_path / "app.py").write_text("def handler(event):\n    return event\n")
    return ToolRegistry(FileTools(Workspace.at(tmp_path)))


def names(registry: ToolRegistry) -> set[str]:
    return {schema["function"]["name"] for schema in registry.prompt_schemas()}


def test_only_core_tools_are_in_the_prompt_until_discovered(registry: ToolRegistry) -> None:
    assert "list_symbols" not in names(registry)
    assert {"read_file", "edit_file", "run_command", "search_tools"} <= names(registry)
    found = registry.search_tools("list the functions and classes (symbols) of a python file")
    assert found.startswith("list_symbols:")
    assert "list_symbols" in names(registry)
    assert "no tool matches" in registry.search_tools("bake a cake")


def test_every_description_states_purpose_and_arguments(registry: ToolRegistry) -> None:
    for spec in registry.specs.values():
        assert len(spec.description) > 40
        assert all(p.get("description") for p in spec.parameters.values())
        assert set(spec.required) <= set(spec.parameters)


def test_calls_are_checked_and_dispatched(registry: ToolRegistry) -> None:
    assert "def handler" in registry.call("read_file", {"path": "app.py"})
    assert "function handler" in registry.call("list_symbols", {"path": "app.py"})
    assert registry.call("run_command", {"command": "echo hi"}) == "exit status 0 (not sandboxed)\nhi\n"
    with pytest.raises(ToolError, match="missing \\['path'\\]"):
        registry.call("read_file", {})
    with pytest.raises(ToolError, match="expected integer"):
        registry.call("read_file", {"path": "app.py", "start": "1"})
    with pytest.raises(ToolError, match="unknown tool"):
        registry.call("fly", {})
