"""The real `cove lsp` process with the real local model, driven by pytest-lsp as an editor would drive it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled

from tests.conftest import ARGPARSE, find_line
from tests.lsp.harness import CLIENTS, cove_server, inline_params, open_file, type_text

pytestmark = pytest.mark.model

NEEDLE = "seen_non_default_actions.add(action)"


@pytest.mark.parametrize("client", CLIENTS)
async def test_initialize_advertises_inline_completion_and_incremental_sync(
    clean_env: dict[str, str], client: str
) -> None:
    async with cove_server(clean_env, client) as (_, result):
        capabilities = result.capabilities
        assert isinstance(capabilities.inline_completion_provider, types.InlineCompletionOptions)
        assert capabilities.completion_provider is not None
        sync = capabilities.text_document_sync
        assert isinstance(sync, types.TextDocumentSyncOptions)
        assert sync.change == types.TextDocumentSyncKind.Incremental
        assert result.server_info is not None and result.server_info.name == "cove"


async def test_inline_completion_comes_from_the_real_model(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, NEEDLE)
        cursor = column + len("seen_non_def")
        result = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor))
        assert isinstance(result, types.InlineCompletionList)
        [item] = result.items
        assert isinstance(item.insert_text, str)
        assert item.insert_text.startswith("ault_actions"), item.insert_text
        assert "\n" not in item.insert_text
        position = types.Position(line, cursor)
        assert item.range == types.Range(position, position)


async def test_block_completion_after_an_opener_spans_lines(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "def _get_values(self, action, arg_strings):")
        end = column + len("def _get_values(self, action, arg_strings):")
        result = await lsp.text_document_inline_completion_async(inline_params(uri, line, end))
        assert isinstance(result, types.InlineCompletionList)
        [item] = result.items
        assert isinstance(item.insert_text, str)
        assert item.insert_text.startswith("\n"), item.insert_text
        body = [row for row in item.insert_text.split("\n")[1:] if row.strip()]
        assert body and all(row.startswith(" " * (column + 4)) for row in body)


@pytest.mark.parametrize("client", ["neovim", "visual-studio-code"])
async def test_completion_items_for_clients_without_inline_completion(clean_env: dict[str, str], client: str) -> None:
    async with cove_server(clean_env, client) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, NEEDLE)
        cursor = column + len("seen_non_def")
        result = await lsp.text_document_completion_async(
            types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(line, cursor))
        )
        assert isinstance(result, types.CompletionList)
        [item] = result.items
        assert isinstance(item.text_edit, types.TextEdit)
        # The item replaces the word being typed, so the client's filtering keeps it.
        assert item.text_edit.range.start == types.Position(line, column)
        assert item.text_edit.new_text.startswith("seen_non_default_actions"), item.text_edit.new_text


async def test_no_duplicate_completion_items_for_inline_clients(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, NEEDLE)
        result = await lsp.text_document_completion_async(
            types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(line, column + 5))
        )
        assert isinstance(result, types.CompletionList) and not result.items


async def test_typing_through_incremental_changes_and_reusing_the_suggestion(clean_env: dict[str, str]) -> None:
    original = ARGPARSE.read_text()
    text = original.replace(NEEDLE, "", 1)  # the line is empty save for its indentation; the user retypes it
    async with cove_server(clean_env) as (lsp, _):
        uri, _ = open_file(lsp, ARGPARSE, text)
        line, column = find_line(original, NEEDLE)
        for version, char in enumerate("seen_non_def", start=2):
            type_text(lsp, uri, version, line, column + version - 2, char)
        cursor = column + len("seen_non_def")
        first = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor))
        assert isinstance(first, types.InlineCompletionList)
        suggestion = first.items[0].insert_text
        assert isinstance(suggestion, str) and suggestion.startswith("ault_actions"), suggestion
        # Typing the suggestion's first character leaves the rest of it as the next suggestion.
        type_text(lsp, uri, 100, line, cursor, suggestion[0])
        second = await lsp.text_document_inline_completion_async(inline_params(uri, line, cursor + 1))
        assert isinstance(second, types.InlineCompletionList)
        assert second.items[0].insert_text == suggestion[1:]


async def test_a_burst_of_twenty_requests_answers_only_the_newest(clean_env: dict[str, str]) -> None:
    original = ARGPARSE.read_text()
    text = original.replace(NEEDLE, "", 1)
    typed = "seen_non_default_act"
    async with cove_server(clean_env) as (lsp, _):
        uri, _ = open_file(lsp, ARGPARSE, text)
        line, column = find_line(original, NEEDLE)
        pending = []
        for index, char in enumerate(typed):
            type_text(lsp, uri, index + 2, line, column + index, char)
            params = inline_params(uri, line, column + index + 1)
            # send_request writes at once (send_request_async only when awaited), keeping keystroke order.
            request = lsp.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params)
            pending.append(asyncio.wrap_future(request))
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert len(results) == 20
        assert all(isinstance(result, JsonRpcRequestCancelled) for result in results[:-1]), results
        last = results[-1]
        assert isinstance(last, types.InlineCompletionList), last
        assert last.items and str(last.items[0].insert_text).startswith("ions"), last.items


async def test_cancel_request_stops_a_completion(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, "def _get_values(self, action, arg_strings):")
        params = inline_params(uri, line, column + len("def _get_values(self, action, arg_strings):"))
        slow = lsp.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="slow-one")
        lsp.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="slow-one"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wrap_future(slow)
        # The model is free again at once: a new request is answered.
        line, column = find_line(text, NEEDLE)
        result = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 12))
        assert isinstance(result, types.InlineCompletionList) and result.items


async def test_bad_initialization_options_are_reported_and_defaults_serve(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env, options={"completion": {"max_tokens": "many"}}) as (lsp, _):
        await lsp.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
        [message] = lsp.messages
        assert message.type == types.MessageType.Error
        assert "editor settings: 'completion.max_tokens' must be an integer" in message.message
        uri, text = open_file(lsp, ARGPARSE)
        line, column = find_line(text, NEEDLE)
        result = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 12))
        assert isinstance(result, types.InlineCompletionList) and result.items
        status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
        # The other layers still apply: COVE_ROUTING_COMPLETE (tests/conftest.py) keeps completions in-process.
        assert status["completions"]["serving"].startswith("the local model"), status


async def test_broken_user_config_file_is_named(clean_env: dict[str, str]) -> None:
    config = Path(clean_env["XDG_CONFIG_HOME"]) / "cove" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[completion]\nmax_tokenz = 3\n")
    async with cove_server(clean_env) as (lsp, _):
        await lsp.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
        assert str(config) in lsp.messages[0].message
        assert "unknown key 'completion.max_tokenz'" in lsp.messages[0].message
        status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
        assert status["completions"]["serving"].startswith("the local model"), "COVE_* still applies"


async def test_did_change_configuration_applies_valid_and_rejects_bad_settings(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        uri, text = open_file(lsp, ARGPARSE)
        opener = "def _get_values(self, action, arg_strings):"
        line, column = find_line(text, opener)
        block = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + len(opener)))
        assert isinstance(block, types.InlineCompletionList) and block.items, "after a colon: a block"
        assert str(block.items[0].insert_text).strip("\n").count("\n") >= 1, "lines of a body"
        lsp.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"cove": {"completion": {"multiline": "never"}}})
        )
        result = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + len(opener)))
        assert isinstance(result, types.InlineCompletionList) and result.items  # the same place: one line (the next)
        assert all("\n" not in str(item.insert_text).strip("\n") for item in result.items), result.items
        lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"cove": {"model": 1}}))
        await lsp.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
        assert "'model' must be a table" in lsp.messages[-1].message


async def test_bad_requests_get_errors_and_the_server_lives_on(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        with pytest.raises(JsonRpcInvalidParams, match="not open"):
            await lsp.text_document_inline_completion_async(inline_params("file:///nowhere/missing.py", 0, 0))
        uri, text = open_file(lsp, ARGPARSE)
        far = await lsp.text_document_inline_completion_async(inline_params(uri, 999_999, 5))
        assert isinstance(far, types.InlineCompletionList)
        line, column = find_line(text, NEEDLE)
        result = await lsp.text_document_inline_completion_async(inline_params(uri, line, column + 12))
        assert isinstance(result, types.InlineCompletionList) and result.items


async def test_model_loading_shows_progress(clean_env: dict[str, str]) -> None:
    async with cove_server(clean_env) as (lsp, _):
        for _ in range(300):
            ends = [
                report
                for reports in lsp.progress_reports.values()
                for report in reports
                if isinstance(report, types.WorkDoneProgressEnd)
            ]
            if ends:
                break
            await asyncio.sleep(0.05)
        [begin, *_, end] = next(iter(lsp.progress_reports.values()))
        assert isinstance(begin, types.WorkDoneProgressBegin) and begin.title == "Cove"
        assert isinstance(end, types.WorkDoneProgressEnd) and str(end.message).startswith(
            "ready: completions from the local model (gemma3"
        )


async def test_a_model_that_does_not_load_is_reported_and_requests_get_errors(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    async with cove_server(clean_env, options={"model": {"path": str(broken)}}) as (lsp, _):
        await lsp.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
        assert "the local model did not load" in lsp.messages[0].message
        uri, _ = open_file(lsp, ARGPARSE)
        with pytest.raises(JsonRpcException, match="cannot load model"):
            await lsp.text_document_inline_completion_async(inline_params(uri, 10, 2))
