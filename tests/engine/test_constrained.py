"""Grammar-constrained tool calls with the real local model: well-formed even where its choices are poor."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.agent.file_tools import FileTools
from cove.agent.safety import Workspace
from cove.agent.tool_registry import ToolRegistry
from cove.config import ModelConfig
from cove.inference.chat.constrained import bounded, local_tool_call, tool_call_schema
from cove.inference.model.local_model import LocalModel

pytestmark = pytest.mark.model


def test_every_local_tool_call_parses_and_fits_a_tool_schema(model_path: Path, tmp_path: Path) -> None:
    registry = ToolRegistry(FileTools(Workspace.at(tmp_path)))
    tools = registry.prompt_schemas()
    model = LocalModel(model_path, ModelConfig(n_ctx=2048))
    prompts = [
        "Task: run the project's tests.\nNext tool call as JSON:\n",
        "Task: show me what is in README.md.\nNext tool call as JSON:\n",
    ]
    for prompt in prompts:
        call = local_tool_call(model, prompt, tools, max_tokens=120)
        spec = registry.specs[call.name]
        spec.check(call.arguments)  # raises if a required argument is missing or mistyped
    # An array argument is bounded for the small model, so the call closes within its budget and passes the checks.
    todo_only = [t for t in tools if t["function"]["name"] == "todo_write"]
    call = local_tool_call(model, "Task: list the steps to add a --verbose flag.\nJSON:\n", todo_only, max_tokens=512)
    assert call.name == "todo_write"
    assert registry.call(call.name, call.arguments).startswith("- [")
    # The engine's own sequence was cleared: completions afterwards still work.
    model.prefill([model.bos, *model.tokenize("def main():")])
    assert model.greedy() >= 0
    model.close()


def test_schema_names_only_the_given_tools(tmp_path: Path) -> None:
    tools = ToolRegistry(FileTools(Workspace.at(tmp_path))).prompt_schemas()
    names = {choice["properties"]["tool"]["const"] for choice in tool_call_schema(tools)["anyOf"]}
    assert names == {schema["function"]["name"] for schema in tools}


def test_bounded_schemas_shorten_nested_strings_and_arrays_only() -> None:
    schema = bounded(
        {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "items": {
                    "type": "array",
                    "maxItems": 20,
                    "items": {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string", "maxLength": 200},
                            "status": {"type": "string", "enum": ["a"]},
                        },
                    },
                },
            },
        }
    )
    assert schema["properties"]["path"] == {"type": "string"}
    items = schema["properties"]["items"]
    assert items["maxItems"] == 6
    assert items["items"]["properties"]["text"]["maxLength"] == 60
    assert "maxLength" not in items["items"]["properties"]["status"]
