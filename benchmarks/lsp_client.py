"""The real `cove lsp` over stdio, driven as an editor drives it, for the benchmarks: documents opened, changed and
closed, inline completions asked for, the cursor reported (`cove/cursor`), the status read."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient


class EditorSession:
    """One `cove lsp` process and the versions of the documents open in it."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self._versions: dict[str, int] = {}
        #: Called with the URI of each `cove/suggestionReady` the server sends (the plugins ask again then).
        self.on_suggestion_ready: Callable[[str], None] | None = None

        @client.feature("cove/suggestionReady")  # type: ignore[untyped-decorator]
        def suggestion_ready(params: Any) -> None:
            uri = getattr(getattr(params, "textDocument", None), "uri", None)
            if self.on_suggestion_ready is not None and isinstance(uri, str):
                self.on_suggestion_ready(uri)

    @classmethod
    async def start(cls, settings: dict[str, Any]) -> EditorSession:
        """A server initialised as an editor with inline completions would, with `settings` as its options
        (completions from its own model unless they route them elsewhere)."""
        settings = {"routing": {"complete": ["local"]}, **settings}
        client = LanguageClient("cove-benchmark", "1")
        await client.start_io(sys.executable, "-m", "cove.cli", "lsp")
        capabilities = types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()
            ),
            general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
        )
        params = types.InitializeParams(capabilities=capabilities, initialization_options=settings)
        await client.initialize_async(params)
        client.initialized(types.InitializedParams())
        return cls(client)

    @property
    def pid(self) -> int:
        """The server process's id (pygls keeps the process it started as `_server`)."""
        server = self.client._server
        if server is None:
            raise RuntimeError("the server process has not started")
        return server.pid

    def open(self, path: Path, text: str) -> str:
        """didOpen; returns the document's URI."""
        uri = path.as_uri()
        self._versions[uri] = 1
        document = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(document))
        return uri

    def close(self, uri: str) -> None:
        self._versions.pop(uri, None)
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))

    def change(self, uri: str, change: types.TextDocumentContentChangeEvent) -> None:
        self._versions[uri] += 1
        identifier = types.VersionedTextDocumentIdentifier(uri=uri, version=self._versions[uri])
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(identifier, [change]))

    def type(self, uri: str, line: int, character: int, text: str) -> None:
        """An incremental didChange inserting `text` at (line, character), as a keystroke sends."""
        at = types.Position(line, character)
        self.change(uri, types.TextDocumentContentChangePartial(range=types.Range(at, at), text=text))

    def cursor(self, uri: str, line: int, character: int) -> None:
        """`cove/cursor`, as the editor plugins send it where the cursor rests."""
        position = {"line": line, "character": character}
        self.client.protocol.notify("cove/cursor", {"textDocument": {"uri": uri}, "position": position})

    async def inline(self, uri: str, line: int, character: int) -> str:
        """The inline completion at (line, character): its first item's text, or ""."""
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(line, character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
        result = await self.client.text_document_inline_completion_async(params)
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        return str(items[0].insert_text) if items else ""

    async def status(self) -> dict[str, Any]:
        """The `cove.status` command's result."""
        result = await self.client.workspace_execute_command_async(types.ExecuteCommandParams("cove.status", []))
        return dict(result or {})

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()  # type: ignore[no-untyped-call]
