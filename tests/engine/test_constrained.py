"""Grammar-constrained tool calls with the real local model: well-formed even where its choices are poor."""

from __future__ import annotations

from pathlib import Path

import pytest

from cove.agent.file_tools import FileTools
from cove.agent.safety import Workspace
from cove.agent.tool_registry import ToolRegistry
from cove.config import ModelConfig
from cove.inference.constrained import local_tool_call, tool_call_schema
from cove.inference.local_model import LocalModel

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
    # The engine's own sequence was cleared: completions afterwards still work.
    model.prefill([model.bos, *model.tokenize("def main():")])
    assert model.greedy() >= 0
    model.close()


def test_schema_names_only_the_given_tools(tmp_path: Path) -> None:
    tools = ToolRegistry(FileTools(Workspace.at(tmp_path))).prompt_schemas()
    names = {choice["properties"]["tool"]["const"] for choice in tool_call_schema(tools)["anyOf"]}
    assert names == {schema["function"]["name"] for schema in tools}
