"""`cove lsp` with completions routed to a real llama.cpp server (`llama-server`, same default model): the editor is
told who serves; with the server killed, the local model answers the next keystroke; with the server back, after
`[remote] retry_after_s`, the server answers again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.conftest import ARGPARSE, find_line
from tests.fim_model import write_fim_model
from tests.llama_server import free_port, llama_server
from tests.lsp.harness import cove_server, inline_params, open_file

pytestmark = pytest.mark.model

#: `[remote] retry_after_s` in the test.
RETRY_S = 2


async def ready_message(lsp: object) -> str:
    for _ in range(400):
        for reports in lsp.progress_reports.values():  # type: ignore[attr-defined]
            for report in reports:
                if isinstance(report, types.WorkDoneProgressEnd):
                    return str(report.message)
        await asyncio.sleep(0.05)
    raise AssertionError("the model never reported ready")


def type_at(lsp: Any, uri: str, version: int, line: int, character: int, text: str) -> None:
    lsp.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(line, character), types.Position(line, character)), text=text
                )
            ],
        )
    )


async def status_of(lsp: Any) -> dict[str, Any]:
    status: dict[str, Any] = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
    return dict(status["completions"])


async def test_completions_from_llama_server_then_the_local_model_then_the_server_again(
    clean_env: dict[str, str], model_path: Path
) -> None:
    with llama_server(model_path) as server:
        options = {
            "routing": {"complete": ["remote", "local"]},
            "remote": {"base_url": server.root, "completion_api": "llama-server", "retry_after_s": RETRY_S},
            "completion": {"reuse_suggestions": False},
        }
        async with cove_server(clean_env, options=options) as (lsp, _):
            message = await ready_message(lsp)
            assert message == f"ready: completions from the model at {server.root} (llama-server /infill)", message
            uri, text = open_file(lsp, ARGPARSE)
            line, column = find_line(text, "seen_non_default_actions.add(action)")
            cursor = column + len("seen_non_default_actions.")
            first = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor))
            assert isinstance(first, types.InlineCompletionList) and first.items
            assert first.items[0].insert_text == "add(action)"
            status = await status_of(lsp)
            assert "llama-server /completion" in status["serving"]  # no FIM tokens: 501, then this
            assert status["answered_last"] == "llama-server"
            server.kill()
            killed = time.monotonic()
            # The next keystroke: the server is gone, the local model answers at once.
            type_at(lsp, uri, 2, line, cursor, "a")
            second = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor + 1))
            assert isinstance(second, types.InlineCompletionList) and second.items
            assert str(second.items[0].insert_text).startswith("dd(action)")
            assert (await status_of(lsp))["answered_last"] == "local"
            server.restart()
            # After retry_after_s the server is tried again, and answers.
            await asyncio.sleep(max(0.0, killed + RETRY_S + 0.5 - time.monotonic()))
            type_at(lsp, uri, 3, line, cursor + 1, "d")
            third = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor + 2))
            assert isinstance(third, types.InlineCompletionList) and third.items
            assert (await status_of(lsp))["answered_last"] == "llama-server"
            assert any("id_task" in slot for slot in server.slots())  # the restarted server answered it


async def test_status_says_who_serves_and_why_a_server_is_passed_over(clean_env: dict[str, str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    options = {"routing": {"complete": ["remote", "local"]}, "remote": {"base_url": dead, "completion_suffix": False}}
    async with cove_server(clean_env, options=options) as (lsp, _):
        await ready_message(lsp)
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        result = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 25))
        assert isinstance(result, types.InlineCompletionList) and result.items  # the local model answered
        completions = await status_of(lsp)
    assert completions["serving"].startswith("the local model (gemma3"), completions
    assert "passed over openai: cannot reach" in completions["serving"]
    [remote, local] = completions["targets"]
    assert (remote["name"], remote["state"], local["state"]) == ("openai", "skipped", "ready")


async def test_completions_through_infill_from_a_fim_model(clean_env: dict[str, str], tmp_path: Path) -> None:
    """The tiny FIM model behind llama-server (random weights: the text is noise, the path is what is checked)."""
    with llama_server(write_fim_model(tmp_path / "tiny-fim.gguf")) as server:
        options = {
            "routing": {"complete": ["remote", "local"]},
            "remote": {"base_url": f"{server.root}/v1", "completion_api": "llama-server"},
        }
        async with cove_server(clean_env, options=options) as (lsp, _):
            await ready_message(lsp)
            uri, text = open_file(lsp, ARGPARSE)
            line, column = find_line(text, "seen_non_default_actions.add(action)")
            result = await lsp.text_document_inline_completion_async(inline_params(uri, line, column))
            assert isinstance(result, types.InlineCompletionList)
            status = await status_of(lsp)
            assert status["answered_last"] == "llama-server", status
            assert status["serving"].endswith(f"at {server.root} (llama-server /infill)"), status
            [slot] = [slot for slot in server.slots() if "id_task" in slot]
            assert int(str(slot["n_prompt_tokens"])) > 500  # the window and its suffix went to /infill
