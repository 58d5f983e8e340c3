"""Start the real `cove lsp` process and drive it with pytest-lsp's client."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import recorded_capabilities

SERVER_COMMAND = [sys.executable, "-m", "cove.cli", "lsp", "--log-level", os.environ.get("COVE_TEST_LOG", "warning")]
if os.environ.get("COVE_TEST_LOG_FILE"):
    SERVER_COMMAND += ["--log-file", os.environ["COVE_TEST_LOG_FILE"]]

#: Capability sets the server is tested against: pytest-lsp's recordings, and one from a real Neovim 0.11
#: with inlineCompletion declared (none of pytest-lsp's recordings declares it).
CLIENTS = ["neovim", "visual-studio-code", "neovim-0.11.4-inline"]


def capabilities_of(client: str) -> types.ClientCapabilities:
    if client == "neovim-0.11.4-inline":
        return recorded_capabilities("neovim_v0.11.4_inline_completion.json")
    return client_capabilities(client)


@asynccontextmanager
async def cove_server(
    env: dict[str, str],
    client: str = "neovim-0.11.4-inline",
    options: dict[str, Any] | None = None,
    root: Path | None = None,
) -> AsyncIterator[tuple[LanguageClient, types.InitializeResult]]:
    """A running server, initialised as `client` would; shut down and checked for errors afterwards."""
    config = ClientServerConfig(server_command=SERVER_COMMAND, server_env=env)
    lsp: LanguageClient = await config.start()  # type: ignore[assignment]
    try:
        result = await lsp.initialize_session(
            types.InitializeParams(
                capabilities=capabilities_of(client),
                root_uri=root.as_uri() if root else None,
                initialization_options=options,
            )
        )
        yield lsp, result
        await lsp.shutdown_session()
    finally:
        # After a failed test the server got no exit notification: end it so that stop() does not wait forever.
        process = lsp._server
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except TimeoutError:
                process.kill()
        await lsp.stop()  # type: ignore[no-untyped-call]


def open_file(lsp: LanguageClient, path: Path, text: str | None = None) -> tuple[str, str]:
    """Send didOpen for `path`; returns its URI and text."""
    text = path.read_text() if text is None else text
    uri = path.as_uri()
    lsp.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))
    )
    return uri, text


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri),
        position=types.Position(line, character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    )


def type_text(lsp: LanguageClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    """An incremental didChange that inserts `text` at (line, character), as an editor sends for a keystroke."""
    position = types.Position(line, character)
    lsp.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(position, position), text=text)],
        )
    )
