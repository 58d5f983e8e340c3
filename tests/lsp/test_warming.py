"""`cove/cursor`: the editor says where the cursor is, and the real server warms that place while the user is idle;
`cove.status` counts what warming did. A malformed `cove/cursor` is logged, never answered, and harms nothing."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import ARGPARSE, find_line
from tests.fuzz.wire import WireClient, lsp_process
from tests.lsp.harness import cove_server, inline_params, open_file

pytestmark = pytest.mark.model


def send_cursor(lsp: LanguageClient, uri: str, line: int, character: int) -> None:
    """`cove/cursor` as the editors send it."""
    lsp.protocol.notify(
        "cove/cursor", {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
    )


async def warm_status(lsp: LanguageClient) -> dict[str, int]:
    status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
    return dict(status["warm"])


async def wait_for(lsp: LanguageClient, key: str, at_least: int, timeout_s: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        warm = await warm_status(lsp)
        if warm[key] >= at_least or time.monotonic() > deadline:
            return warm
        await asyncio.sleep(0.1)


async def settled(lsp: LanguageClient, timeout_s: float = 60.0) -> dict[str, int]:
    """The warm counts once every short answer's full window has been evaluated or abandoned."""
    deadline = time.monotonic() + timeout_s
    while True:
        warm = await warm_status(lsp)
        if warm["prefilled"] + warm["abandoned"] >= warm["short_answers"] or time.monotonic() > deadline:
            return warm
        await asyncio.sleep(0.1)


async def test_the_cursor_is_warmed_and_counted(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        assert await warm_status(lsp) == {
            "requested": 0,
            "prefilled": 0,
            "abandoned": 0,
            "tokens": 0,
            "short_answers": 0,
        }
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        send_cursor(lsp, uri, line, column + 12)
        warm = await wait_for(lsp, "prefilled", 1)
        assert warm["requested"] == 1 and warm["prefilled"] == 1, warm
        assert warm["tokens"] > 500, "a cold place in argparse.py: the whole window was evaluated"
        send_cursor(lsp, uri, line, column + 12)  # the same place again: nothing left to evaluate
        warm = await wait_for(lsp, "prefilled", 2)
        assert (warm["requested"], warm["prefilled"]) == (2, 2), warm
        again = warm["tokens"]
        reply = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 12))
        assert isinstance(reply, types.InlineCompletionList) and reply.items
        assert str(reply.items[0].insert_text).startswith("ault_actions")
        assert (await warm_status(lsp))["tokens"] == again


async def test_a_completion_stops_a_warm_and_a_cold_place_answers_at_once_then_extends(
    clean_env: dict[str, str],
) -> None:
    async with cove_server(clean_env) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        await lsp.text_document_inline_completion_async(inline_params(uri, 0, 0))  # wait for the model to load
        # (argparse's imports resolve next to it: that first answer has workspace context, and may be a short one,
        # whose full window then follows in the background: let it finish, or the counts below depend on the clock)
        before = await settled(lsp)
        far, column = find_line(text, "def _get_values(self, action, arg_strings):")
        send_cursor(lsp, uri, far, column)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        reply = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 12))
        assert isinstance(reply, types.InlineCompletionList) and reply.items
        warm = await warm_status(lsp)
        changed = {key: warm[key] - before[key] for key in ("requested", "abandoned", "short_answers")}
        assert changed == {"requested": 1, "abandoned": 1, "short_answers": 1}, (before, warm)
        # the full window of the place answered, in the background
        warm = await wait_for(lsp, "prefilled", before["prefilled"] + 1)
        assert warm["prefilled"] == before["prefilled"] + 1 and warm["tokens"] - before["tokens"] > 400, warm


async def test_warming_and_the_short_window_turned_off(clean_env: dict[str, str]) -> None:
    options = {"completion": {"warm_cursor": False, "first_window_chars": 0}}
    async with cove_server(clean_env, options=options) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        send_cursor(lsp, uri, line, column + 12)
        reply = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 12))
        assert isinstance(reply, types.InlineCompletionList) and reply.items
        assert str(reply.items[0].insert_text).startswith("ault_actions")
        # The cursor was handled before the completion (notifications in order) and asked for no warming; a short
        # answer would be counted when its generation ends, which `last_stop` shows.
        for _ in range(600):
            status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
            if status["completions"]["last_stop"]:
                break
            await asyncio.sleep(0.05)
        assert status["completions"]["last_stop"], "the generation did not end"
        assert status["warm"] == {
            "requested": 0,
            "prefilled": 0,
            "abandoned": 0,
            "tokens": 0,
            "short_answers": 0,
        }


@pytest.fixture
def wire(clean_env: dict[str, str]) -> Iterator[tuple[WireClient, str]]:
    """A raw client of an initialised server with argparse.py open."""
    process, client = lsp_process([sys.executable, "-m", "cove.cli", "lsp", "--log-level", "error"], clean_env)
    init = client.call("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    assert "result" in init
    client.notify("initialized", {})
    item = {"uri": ARGPARSE.as_uri(), "languageId": "python", "version": 1, "text": Path(ARGPARSE).read_text()}
    client.notify("textDocument/didOpen", {"textDocument": item})
    yield client, ARGPARSE.as_uri()
    assert process.poll() is None, "the server died"
    assert not client.notifications("window/showMessage"), client.notifications("window/showMessage")
    client.notify("exit", None)
    process.wait(timeout=10)


GARBAGE: list[Any] = [
    None,
    [],
    42,
    "cursor",
    {},
    {"textDocument": {"uri": "file:///nowhere/never%20opened.py"}, "position": {"line": 1, "character": 1}},
    {"textDocument": {}, "position": {"line": 1, "character": 1}},
    {"textDocument": {"uri": "x"}, "position": {"line": -1, "character": 0}},
    {"textDocument": {"uri": "x"}, "position": {"line": "one", "character": 0}},
    {"position": {"line": 1, "character": 1}},
]


def test_garbage_cursors_get_no_reply_and_harm_nothing(wire: tuple[WireClient, str]) -> None:
    client, uri = wire
    init_replies = sum(client.replies().values())
    for params in GARBAGE:
        client.notify("cove/cursor", params)
    past_the_end = {"textDocument": {"uri": uri}, "position": {"line": 10**6, "character": 10**6}}
    client.notify("cove/cursor", past_the_end)
    as_request = client.call("cove/cursor", {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 1}})
    assert as_request["error"]["code"] == -32600, as_request  # a notification sent with an id is refused, answered
    status = client.call("workspace/executeCommand", {"command": "cove.status", "arguments": []})
    assert status["result"]["warm"]["requested"] == 0, status  # nothing malformed, unopened or out of range counted
    probe = client.call(
        "textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 40, "character": 4}}
    )
    assert "result" in probe, probe
    assert sum(client.replies().values()) == init_replies + 3, "only the three requests were answered"
