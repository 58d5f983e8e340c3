"""Suggestions shown and accepted through the real server are counted on this machine; `cove stats` reports them."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from tests.conftest import ARGPARSE, find_line
from tests.lsp.harness import cove_server, inline_params, open_file

pytestmark = pytest.mark.model


async def test_an_accepted_suggestion_is_counted_and_reported(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, result):
        commands = result.capabilities.execute_command_provider
        assert commands is not None and "cove.accepted" in commands.commands
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        reply = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 12))
        assert isinstance(reply, types.InlineCompletionList)
        [item] = reply.items
        assert item.command is not None and item.command.command == "cove.accepted"
        await lsp.workspace_execute_command_async(
            types.ExecuteCommandParams(item.command.command, item.command.arguments)
        )
    stats = Path(clean_env["XDG_STATE_HOME"]) / "cove" / "stats.json"
    [day] = json.loads(stats.read_text()).values()
    assert day == {"accepted": 1, "dismissed": 0, "shown": 1}
    printed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cove.cli", "stats", env=clean_env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await printed.communicate()
    assert out.decode().splitlines()[-1].split() == ["all", "1", "1", "0", "100.0%"]
