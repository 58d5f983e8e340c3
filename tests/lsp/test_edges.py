"""What clients this project did not write send: escaped URIs, wrong types, broken frames, positions past the end.
Each case was found by driving `cove lsp` from outside; each gets exactly one reply (or, without an id, none) and
never a dialog."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError

from tests.fuzz.wire import WireClient, lsp_process, next_id
from tests.lsp.harness import cove_server, inline_params, open_file

pytestmark = pytest.mark.model

#: Lines 1 and 5 end in the middle of an expression, so that the model has something to say at their ends.
SOURCE = "def mean(values):\n    total = sum(values\n    return total / len(values)\n\n\nprint(mean([1, 2]"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "my project"
    (root / "Документы").mkdir(parents=True)
    return root


@pytest.fixture
def wire(clean_env: dict[str, str], project: Path) -> Iterator[tuple[WireClient, str]]:
    """A raw client of an initialised server with `my module.py` open (its URI percent-encoded)."""
    process, client = lsp_process([sys.executable, "-m", "cove.cli", "lsp", "--log-level", "error"], clean_env)
    capabilities: dict[str, Any] = {"textDocument": {"inlineCompletion": {}}}
    init = client.call("initialize", {"processId": None, "rootUri": project.as_uri(), "capabilities": capabilities})
    assert "result" in init
    client.notify("initialized", {})
    path = project / "my module.py"
    path.write_text(SOURCE)
    uri = path.as_uri()
    assert "%20" in uri
    item = {"uri": uri, "languageId": "python", "version": 1, "text": SOURCE}
    client.notify("textDocument/didOpen", {"textDocument": item})
    yield client, uri
    assert process.poll() is None, "the server died"
    assert not client.notifications("window/showMessage"), client.notifications("window/showMessage")
    client.notify("exit", None)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


async def test_percent_encoded_uris_get_completions_and_code_actions(clean_env: dict[str, str], project: Path) -> None:
    async with cove_server(clean_env, root=project) as (lsp, _):
        for path in (project / "my module.py", project / "Документы" / "x.py"):
            path.write_text(SOURCE)
            uri, _ = open_file(lsp, path)
            assert "%" in uri
            result = await lsp.text_document_inline_completion_async(inline_params(uri, 1, len("    total = ")))
            assert isinstance(result, types.InlineCompletionList) and result.items, uri
            actions = await lsp.text_document_code_action_async(
                types.CodeActionParams(
                    types.TextDocumentIdentifier(uri),
                    types.Range(types.Position(0, 4), types.Position(0, 4)),
                    types.CodeActionContext(diagnostics=[]),
                )
            )
            assert actions, uri


def completion(uri: Any, line: Any = 0, character: Any = 0) -> dict[str, Any]:
    return {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 1},
    }


@pytest.mark.parametrize(
    "params",
    [
        {"textDocument": 42, "position": {"line": 0, "character": 0}, "context": {"triggerKind": 1}},
        completion("URI", "x", 0),
        completion("URI", -1, 0),
        completion("URI", 0, -1),
        ["file:///x.py", 0, 0],
        {"position": {"line": 0, "character": 0}},
    ],
    ids=["textDocument-42", "line-string", "negative-line", "negative-character", "params-array", "no-document"],
)
def test_params_that_fail_structuring_get_invalid_params(wire: tuple[WireClient, str], params: Any) -> None:
    client, uri = wire
    params = completion(uri, *[params["position"][k] for k in ("line", "character")]) if _uses_uri(params) else params
    reply = client.call("textDocument/inlineCompletion", params)
    assert reply["error"]["code"] == -32602, reply
    assert "textDocument/inlineCompletion" in reply["error"]["message"]
    assert client.replies()[reply["id"]] == 1


def _uses_uri(params: Any) -> bool:
    return isinstance(params, dict) and params.get("textDocument") == {"uri": "URI"}


def test_malformed_frames_are_logged_or_answered_never_shown(wire: tuple[WireClient, str]) -> None:
    client, uri = wire
    for body in (b"{", b"\xff\xfe", b"[]", b"42", b"null"):
        client.send(body)  # no id to answer: logged only
    ident = next_id()
    client.send({"id": ident, "method": "textDocument/inlineCompletion", "params": completion(uri)})
    reply = client.wait_reply(ident)
    assert reply["error"]["code"] == -32600 and "jsonrpc" in reply["error"]["message"]
    ident = next_id()
    client.send({"jsonrpc": "1.0", "id": ident, "method": "shutdown"})
    assert client.wait_reply(ident)["error"]["code"] == -32600
    # The server serves on, and said nothing to the user (checked by the fixture).
    assert "result" in client.call("textDocument/inlineCompletion", completion(uri, 1, 5))
    assert set(client.replies()) <= {m for m in client.replies() if m is not None}


def test_code_action_resolved_on_a_document_never_opened(wire: tuple[WireClient, str]) -> None:
    client, _ = wire
    action = {"title": "Explain", "data": {"action": "explain", "uri": "file:///nowhere/never%20opened.py"}}
    reply = client.call("codeAction/resolve", action)
    assert reply["error"]["code"] == -32602, reply
    assert "not open" in reply["error"]["message"]
    assert "data" not in reply["error"] or not reply["error"]["data"]


@pytest.mark.parametrize(
    ("line", "character", "expected"),
    [
        (1, len("    total = sum(values") + 1, (1, len("    total = sum(values"))),  # past the line's end: its end
        (1, 10_000, (1, len("    total = sum(values"))),
        (5, 10_000, (5, len("print(mean([1, 2]"))),  # the last line has no newline: still its very end
        (6, 0, None),  # a line past the end of the document: no suggestion
        (2**31 - 1, 2**31 - 1, None),
    ],
)
def test_positions_past_the_end_are_clamped_per_the_spec(
    wire: tuple[WireClient, str], line: int, character: int, expected: tuple[int, int] | None
) -> None:
    client, uri = wire
    options = {"multiline": "never", "max_tokens": 4}
    client.notify("workspace/didChangeConfiguration", {"settings": {"cove": {"completion": options}}})
    reply = client.call("textDocument/inlineCompletion", completion(uri, line, character))
    items = reply["result"]["items"]
    if expected is None:
        assert items == []
        return
    assert items, "the model suggested nothing at the end of a line"
    for item in items:  # the echoed range is the clamped cursor, whatever the model suggested
        position = {"line": expected[0], "character": expected[1]}
        assert item["range"] == {"start": position, "end": position}, item


def test_a_malformed_response_from_the_client_is_not_answered(wire: tuple[WireClient, str]) -> None:
    client, uri = wire
    client.send({"jsonrpc": "2.0", "id": "not-ours", "error": {"code": "x"}})  # an error response of the wrong shape
    assert "result" in client.call("textDocument/inlineCompletion", completion(uri, 1, 5))
    assert client.replies()["not-ours"] == 0


async def test_a_generation_that_fails_answers_its_keystroke_with_the_error_once(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    """The server first in `[routing] complete` is down and the local model it falls back to cannot load: each
    keystroke gets the error (the generation is not started again and again behind it), and the next one too."""
    options = {
        "routing": {"complete": ["remote", "local"]},
        "remote": {"base_url": "http://127.0.0.1:9/v1"},
        "model": {"path": str(tmp_path / "missing.gguf")},
    }
    async with cove_server(clean_env, options=options) as (lsp, _):
        uri, _ = open_file(lsp, tmp_path / "a.py", "import os\nos.")
        for _ in range(2):
            with pytest.raises(JsonRpcInternalError, match=r"missing\.gguf, which is not a file"):
                await asyncio.wait_for(lsp.text_document_inline_completion_async(inline_params(uri, 1, 3)), 30)
        status: Any = await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
    assert status["typing"]["generations"] == 2, status["typing"]
