"""Completion settings as users set them (the editor's settings), each shown by its effect through the real server:
`max_block_lines`, `max_block_tokens`, `context_chars`."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types

from tests.conftest import ARGPARSE, find_line
from tests.lsp.harness import cove_server, inline_params, open_file

pytestmark = pytest.mark.model

#: After this header the model writes a body of many lines (tests/engine/test_engine.py's block place).
HEADER = "def _get_values(self, action, arg_strings):"


async def block_at_header(options: dict[str, Any], env: dict[str, str]) -> str:
    async with cove_server(env, options={"completion": {"multiline": "always", **options}}) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, HEADER)
        reply = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + len(HEADER)))
    assert isinstance(reply, types.InlineCompletionList) and reply.items, reply
    return str(reply.items[0].insert_text)


async def test_max_block_lines_and_max_block_tokens_bound_a_block(clean_env: dict[str, str]) -> None:
    whole = await block_at_header({}, clean_env)
    assert whole.strip("\n").count("\n") >= 2, f"the place gives a body of 3 lines or more: {whole!r}"
    two = await block_at_header({"max_block_lines": 2}, clean_env)
    assert 1 <= len(two.strip("\n").split("\n")) <= 2 and whole.startswith(two.rstrip()), (two, whole)
    few = await block_at_header({"max_block_tokens": 10}, clean_env)
    assert len(few) < len(whole) and whole.startswith(few.rstrip()), (few, whole)


async def test_context_chars_bounds_the_workspace_context(clean_env: dict[str, str]) -> None:
    shown: dict[int, str] = {}
    for budget in (1200, 200):
        async with cove_server(clean_env, options={"completion": {"context_chars": budget}}) as (lsp, _):
            uri, text = open_file(lsp, ARGPARSE)
            line, column = find_line(text, "seen_non_default_actions.add(action)")
            result: Any = await lsp.workspace_execute_command_async(
                types.ExecuteCommandParams("cove.showContext", [uri, {"line": line, "character": column}])
            )
            shown[budget] = result["context"]
    assert len(shown[1200]) > 200, "argparse's imports give more than 200 characters of context"
    assert 0 < len(shown[200]) <= 200, shown[200]
