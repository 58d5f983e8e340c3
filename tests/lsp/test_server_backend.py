"""`cove lsp` with completions routed to a real OpenAI-compatible server (llama-cpp-python's, same default model):
the editor is told who serves; with the server gone, the local model answers the next keystroke."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.conftest import ARGPARSE, find_line
from tests.engine.test_server_completions import free_port, llama_cpp_server
from tests.lsp.harness import cove_server, inline_params, open_file

pytestmark = pytest.mark.model


async def ready_message(lsp: object) -> str:
    for _ in range(400):
        for reports in lsp.progress_reports.values():  # type: ignore[attr-defined]
            for report in reports:
                if isinstance(report, types.WorkDoneProgressEnd):
                    return str(report.message)
        await asyncio.sleep(0.05)
    raise AssertionError("the model never reported ready")


async def test_completions_from_the_server_then_from_the_local_model_when_it_dies(
    clean_env: dict[str, str], model_path: Path
) -> None:
    with llama_cpp_server(model_path) as (url, process):
        options = {
            "routing": {"complete": ["remote", "local"]},
            "remote": {"base_url": url, "completion_suffix": False},
        }
        async with cove_server(clean_env, options=options) as (lsp, _):
            message = await ready_message(lsp)
            assert message == f"ready: completions from the model at {url} (OpenAI-compatible /completions)", message
            uri, text = open_file(lsp, ARGPARSE)
            line, column = find_line(text, "seen_non_default_actions.add(action)")
            cursor = column + len("seen_non_default_actions.")
            first = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor))
            assert isinstance(first, types.InlineCompletionList) and first.items
            assert first.items[0].insert_text == "add(action)"
            process.kill()
            process.wait()
            # The next keystroke: the server is gone, the local model answers the same request.
            lsp.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(types.Position(line, cursor), types.Position(line, cursor)), text="a"
                        )
                    ],
                )
            )
            second = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor + 1))
            assert isinstance(second, types.InlineCompletionList) and second.items
            assert str(second.items[0].insert_text).startswith("dd(action)")


async def test_status_says_who_serves_and_why_a_server_is_passed_over(clean_env: dict[str, str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    options = {"routing": {"complete": ["remote", "local"]}, "remote": {"base_url": dead, "completion_suffix": False}}
    async with cove_server(clean_env, options=options) as (lsp, _):
        await ready_message(lsp)
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "seen_non_default_actions.add(action)")
        result = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 25))
        assert isinstance(result, types.InlineCompletionList) and result.items  # the local model answered
        status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
    completions = status["completions"]
    assert completions["serving"].startswith("the local model (gemma3"), completions
    assert "passed over openai: cannot reach" in completions["serving"]
    [remote, local] = completions["targets"]
    assert (remote["name"], remote["state"], local["state"]) == ("openai", "skipped", "ready")
