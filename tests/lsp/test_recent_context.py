"""The ring of recently seen code through the real server: what the editor reports (`cove/cursor` where the cursor
rests, `cove/yanked`, saves) reaches the context of a completion in another file that uses its names, as
`cove.showContext` shows it; malformed reports and arguments get errors, never a dialog."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from tests.lsp.harness import cove_server, open_file

RETRY = (
    '"""Retrying."""\n\n\ndef backoff_delays(base: float, attempts: int) -> list[float]:\n'
    '    """Delays between attempts."""\n    return [base * 2**n for n in range(attempts)]\n'
)
SHAPES = (
    "def area(width, height):\n    return width * height\n\n\ndef perimeter(width, height):\n    return 2 * width\n"
)
CLIENT = (
    "import time\n\n\ndef fetch(session, url):\n    for delay in backoff_delays(0.5, 4):\n        time.sleep(delay)\n"
)


async def show_context(lsp: object, uri: str, line: int, character: int) -> str:
    params = types.ExecuteCommandParams("cove.showContext", [uri, {"line": line, "character": character}])
    shown = await lsp.workspace_execute_command_async(params)  # type: ignore[attr-defined]
    context: str = shown["context"]
    return context


async def test_yanked_viewed_and_saved_code_reaches_the_context(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    async with cove_server(agent_env, client="visual-studio-code", root=root) as (lsp, _):
        retry, _ = open_file(lsp, root / "retry.py", RETRY)
        shapes, _ = open_file(lsp, root / "shapes.py", SHAPES)
        client, _ = open_file(lsp, root / "client.py", CLIENT)
        assert await show_context(lsp, client, 6, 0) == ""  # nothing seen yet

        span = {"start": {"line": 3, "character": 4}, "end": {"line": 5, "character": 0}}
        lsp.protocol.notify("cove/yanked", {"textDocument": {"uri": retry}, "range": span})
        lsp.protocol.notify("cove/cursor", {"textDocument": {"uri": shapes}, "position": {"line": 1, "character": 0}})
        yanked = await show_context(lsp, client, 6, 0)
        assert yanked.startswith("# retry.py:4 (yanked)\ndef backoff_delays(base: float, attempts: int)")
        assert "area" not in yanked  # viewed, but no name in common with the code at the cursor

        uses_area = CLIENT + "    return area(3, 4)\n"
        lsp.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=2, uri=client),
                [types.TextDocumentContentChangeWholeDocument(uses_area)],
            )
        )
        assert "# shapes.py:1 (viewed)\ndef area(width, height):" in await show_context(lsp, client, 7, 0)

        edited = SHAPES.replace("2 * width", "2 * (width + height)")
        lsp.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=2, uri=shapes),
                [
                    types.TextDocumentContentChangePartial(
                        types.Range(types.Position(5, 0), types.Position(6, 0)), "    return 2 * (width + height)\n"
                    )
                ],
            )
        )
        lsp.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(shapes)))
        saved = await show_context(lsp, client, 7, 0)
        assert "(saved)" in saved and "2 * (width + height)" in saved and edited.count("def") == 2

        for arguments in ([client], [client, {"line": -1, "character": 0}], [42, {"line": 0, "character": 0}]):
            with pytest.raises(JsonRpcInvalidParams):
                await lsp.workspace_execute_command_async(types.ExecuteCommandParams("cove.showContext", arguments))
        lsp.protocol.notify("cove/yanked", {"textDocument": {"uri": retry}, "range": "lines 3 to 5"})
        lsp.protocol.notify("cove/yanked", {"textDocument": {"uri": "file:///never/opened.py"}, "range": span})
        assert (await show_context(lsp, client, 7, 0)) == saved  # the server serves on, its ring unchanged
    assert not [m for m in lsp.messages if m.type == types.MessageType.Error]
