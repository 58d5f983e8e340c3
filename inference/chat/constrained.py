"""Tool calls from a small local model that are always well-formed: JSON-schema grammars in llama.cpp.

A 270M model chooses poorly, but under a grammar built from the tools' schemas it cannot produce a call that does
not parse or that names a tool that does not exist; its arguments always have the required keys and types.
"""

from __future__ import annotations

import json
from typing import Any

from cove.errors import ModelError
from cove.inference.chat.chat_model import ToolCall
from cove.inference.model.local_model import LocalModel

#: Bounds a small model's arrays and strings inside a call, so that a call always closes within its token budget.
MAX_LOCAL_ITEMS = 6
MAX_LOCAL_STRING = 60


def bounded(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` whose arrays and free strings nested inside arrays are short; top-level strings
    (a path, a command, a file's new content) are left as they are."""
    out = dict(schema)
    if out.get("type") == "array":
        out["maxItems"] = min(out.get("maxItems", MAX_LOCAL_ITEMS), MAX_LOCAL_ITEMS)
        out["items"] = _bounded_strings(out.get("items", {}))
    elif out.get("type") == "object":
        out["properties"] = {k: bounded(v) for k, v in out.get("properties", {}).items()}
    return out


def _bounded_strings(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    if out.get("type") == "string" and "enum" not in out:
        out["maxLength"] = min(out.get("maxLength", MAX_LOCAL_STRING), MAX_LOCAL_STRING)
    elif out.get("type") == "object":
        out["properties"] = {k: _bounded_strings(v) for k, v in out.get("properties", {}).items()}
    elif out.get("type") == "array":
        out = bounded(out)
    return out


def tool_call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """One JSON schema accepting exactly `{"tool": NAME, "arguments": {...}}` for any of the OpenAI-style `tools`."""
    choices = []
    for tool in tools:
        function = tool["function"]
        parameters = bounded(dict(function.get("parameters") or {"type": "object", "properties": {}}))
        parameters["additionalProperties"] = False
        choices.append(
            {
                "type": "object",
                "properties": {"tool": {"const": function["name"]}, "arguments": parameters},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
        )
    return {"anyOf": choices}


def local_tool_call(model: LocalModel, prompt: str, tools: list[dict[str, Any]], max_tokens: int = 256) -> ToolCall:
    """The local model's next tool call for `prompt`, constrained to the tools' schemas."""
    if not tools:
        raise ModelError("no tools to call")
    text = model.constrained(prompt, tool_call_schema(tools), max_tokens)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:  # only when max_tokens cut the JSON short
        raise ModelError(f"the tool call was cut at {max_tokens} tokens; raise max_tokens ({err})") from err
    return ToolCall("local-0", data["tool"], data["arguments"])
