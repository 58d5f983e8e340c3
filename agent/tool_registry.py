"""The tools the agent can call: descriptions from package data, arguments checked, lazy discovery.

Only core tools' schemas go into the prompt; the rest are found with `search_tools` and added once discovered.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from cove.agent.command_tool import CommandWatch, run_command
from cove.agent.file_tools import FileTools, ToolError
from cove.agent.sandbox import Sandbox
from cove.agent.search_tools import find_symbol, list_files, list_symbols, search
from cove.agent.todos import TodoList

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "object": dict,
    "array": list,
    "number": (int, float),
}


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it, and how to run it."""

    name: str
    description: str
    parameters: dict[str, dict[str, Any]]
    required: tuple[str, ...]
    read_only: bool
    core: bool
    #: What the tool does, as editors group tool calls (ACP's tool kinds: read, edit, search, execute, think, ...).
    kind: str = "other"
    #: Its changes are files a `propose` run keeps for the editor to review (not asked for first).
    proposable: bool = False

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": self.parameters,
                    "required": list(self.required),
                    "additionalProperties": False,
                },
            },
        }

    def check(self, arguments: dict[str, Any]) -> None:
        """ToolError (classified as bad arguments) for unknown, missing or mistyped arguments."""
        unknown = sorted(set(arguments) - set(self.parameters))
        missing = [name for name in self.required if name not in arguments]
        if unknown or missing:
            raise ToolError(f"invalid arguments for {self.name}: unknown {unknown}, missing {missing}")
        for name, value in arguments.items():
            expected = _JSON_TYPES.get(self.parameters[name].get("type", ""), object)  # no type: anything goes
            if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
                raise ToolError(f"invalid argument {name} for {self.name}: expected {self.parameters[name]['type']}")


def load_specs() -> dict[str, ToolSpec]:
    """Every tool's spec, from the package's tools.toml."""
    data = tomllib.loads(files("cove.agent").joinpath("tools.toml").read_text(encoding="utf-8"))
    return {
        name: ToolSpec(
            name,
            d["description"],
            d["parameters"],
            tuple(d["required"]),
            d["read_only"],
            d["core"],
            d["kind"],
            d.get("proposable", False),
        )
        for name, d in data.items()
    }


class ToolRegistry:
    """The tools of one session: the workspace's, the todo list, and any `extra` ones the session provides
    (memory, archived outputs); a tool of tools.toml without an implementation is left out."""

    def __init__(
        self,
        file_tools: FileTools,
        todos: TodoList | None = None,
        extra: dict[str, Callable[..., str]] | None = None,
        sandbox: Sandbox | None = None,
        watch: CommandWatch | None = None,
    ) -> None:
        """`sandbox`: where run_command runs its commands (None: unconfined); `watch`: who sees their output and
        may kill them (a cancelled run)."""
        self.discovered: set[str] = set()
        self.todos = todos if todos is not None else TodoList()
        workspace = self.workspace = file_tools.workspace
        self.file_tools = file_tools
        self._run: dict[str, Callable[..., str]] = {
            "read_file": file_tools.read_file,
            "write_file": file_tools.write_file,
            "edit_file": file_tools.edit_file,
            "undo": file_tools.undo,
            "list_files": lambda path=".": list_files(workspace, path),
            "search": lambda pattern, path=".": search(workspace, pattern, path),
            "list_symbols": lambda path: list_symbols(workspace, path),
            "find_symbol": lambda name: find_symbol(workspace, name),
            "run_command": lambda command, cwd=".", timeout_s=120: run_command(
                workspace, command, cwd, timeout_s, sandbox=sandbox, watch=watch or CommandWatch()
            ),
            "search_tools": self.search_tools,
            "todo_write": self.todos.write,
            **(extra or {}),
        }
        specs = load_specs()
        unknown = set(self._run) - set(specs)
        assert not unknown, f"tools without a description in tools.toml: {unknown}"
        self.specs = {name: spec for name, spec in specs.items() if name in self._run}

    def add(self, spec: ToolSpec, run: Callable[..., str]) -> None:
        """Offer one more tool (an MCP server's); not core, so it is found through search_tools."""
        self.specs[spec.name] = spec
        self._run[spec.name] = run

    def restricted(self, read_only: bool) -> ToolRegistry:
        """The same tools (and todo list), limited to the read-only ones when `read_only` (the planner's set)."""
        view = ToolRegistry(self.file_tools, self.todos)
        view._run, view.discovered = self._run, self.discovered
        view.specs = {n: s for n, s in self.specs.items() if not read_only or (s.read_only and n != "todo_write")}
        return view

    def prompt_schemas(self) -> list[dict[str, Any]]:
        """The schemas that go into the prompt: the core tools and those discovered so far."""
        return [spec.schema() for spec in self.specs.values() if spec.core or spec.name in self.discovered]

    def search_tools(self, query: str) -> str:
        """Tools whose name or description shares words with `query`, best first; they become available."""
        words = {w for w in re.findall(r"[a-z]+", query.lower()) if len(w) > 2}
        scored = []
        for spec in self.specs.values():
            if spec.core:
                continue
            text = set(re.findall(r"[a-z]+", f"{spec.name.replace('_', ' ')} {spec.description}".lower()))
            score = len(words & text)
            if score:
                scored.append((score, spec))
        if not scored:
            return f"no tool matches {query!r}; the tools in your prompt are all there is for that"
        scored.sort(key=lambda pair: -pair[0])
        for _, spec in scored:
            self.discovered.add(spec.name)
        return "\n".join(f"{spec.name}: {spec.description}" for _, spec in scored)

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run a tool after checking its arguments."""
        spec = self.specs.get(name)
        if spec is None:
            raise ToolError(f"unknown tool {name!r}; search_tools finds tools by what they do")
        spec.check(arguments)
        self.discovered.add(name)  # a known tool called by name (e.g. read_output from a mask) stays available
        return self._run[name](**arguments)
