"""Cove's language server: thin LSP handlers over the completion service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from cove import __version__
from cove.config import CoveConfig, LoadedConfig, find_project_root, load_config
from cove.errors import ConfigError, CoveError
from cove.inference.engine import Completion, CompletionEngine
from cove.runtime import state_directory
from cove.server import agent_features
from cove.server.agent_bridge import AgentBridge
from cove.server.code_context import ParsedDocuments
from cove.server.completions import CompletionService
from cove.server.convert import completion_list, inline_completion_list
from cove.server.stats import SuggestionStats
from cove.server.workspace_context import WorkspaceContext

logger = logging.getLogger(__name__)


class CoveServer(LanguageServer):
    """The language server and the state it keeps: settings and the completion service."""

    def __init__(self) -> None:
        super().__init__("cove", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.project_root: Path | None = None
        self.completions: CompletionService | None = None
        self._config_error: str | None = None
        self.shut_down = False
        self._loading_watch: asyncio.Task[None] | None = None
        self.parsed = ParsedDocuments()
        self.context = WorkspaceContext(None)
        self.stats = SuggestionStats(state_directory() / "stats.json")
        self.agent = AgentBridge(self, self.work_done_progress)

    def load_settings(self, editor_settings: Any) -> LoadedConfig:
        """Read every config layer; on an error keep what worked before and tell the user why."""
        settings = editor_settings.get("cove", editor_settings) if isinstance(editor_settings, dict) else None
        try:
            loaded = load_config(self.project_root, os.environ, settings or None)
            self._config_error = None
        except ConfigError as err:
            self._config_error = f"Cove: {err}"
            logger.error("%s", err)
            loaded = self.completions.loaded if self.completions else LoadedConfig(CoveConfig(), (), None)
        return loaded

    def report_config_error(self) -> None:
        """Show the last config error in the editor, once."""
        if self._config_error:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Error, self._config_error))
            self._config_error = None

    def watch_loading(self, loading: Future[CompletionEngine]) -> None:
        """Show the model's loading as `$/progress` where the client supports it, and a failure as an error."""
        self._loading_watch = asyncio.get_running_loop().create_task(self._report_loading(loading))

    async def _report_loading(self, loading: Future[CompletionEngine]) -> None:
        window = self.client_capabilities.window
        token = f"cove-model-{id(loading)}"
        progress = bool(window and window.work_done_progress)
        if progress:
            try:
                await self.work_done_progress.create_async(token)
                self.work_done_progress.begin(
                    token, types.WorkDoneProgressBegin(title="Cove", message="loading the local model")
                )
            except Exception:  # a client that refuses the token still gets completions
                progress = False
        try:
            engine = await asyncio.wrap_future(loading)
            message = f"ready: {engine.model.description}"
        except CoveError as err:
            message = f"the local model did not load: {err}"
            self.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"Cove: {message}"))
        if progress:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    def cursor(self, uri: str, position: types.Position) -> tuple[str, int]:
        """An open document's text and the character offset of `position` in it (clamped to the text)."""
        if uri not in self.workspace.text_documents:
            raise JsonRpcInvalidParams(f"document {uri} is not open; send textDocument/didOpen first")
        document = self.workspace.get_text_document(uri)
        lines = document.lines
        if position.line >= len(lines):
            return document.source, len(document.source)
        return document.source, document.offset_at_position(position)

    async def complete(self, uri: str, text: str, offset: int) -> Completion:
        """Run a completion with the workspace's context, turning Cove's errors into JSON-RPC errors the client
        can show; every suggestion is counted for `cove stats`."""
        service = self.service()
        budget = service.loaded.config.completion.context_chars

        def context(anchor_line: int) -> str:
            return self.context.gather(uri, text, anchor_line, budget)

        try:
            completion = await service.complete(uri, text, offset, context)
        except CoveError as err:
            raise JsonRpcException(message=str(err), code=err.rpc_code) from err
        self.stats.shown(uri, completion.text, typed_through=completion.stop == "suggestion")
        return completion

    def service(self) -> CompletionService:
        """The completion service, created with default settings if the client skipped `initialize`'s options."""
        if self.completions is None:
            self.completions = CompletionService(self.load_settings(None))
        return self.completions


def _root_of(params: types.InitializeParams) -> Path | None:
    if params.workspace_folders:
        return Path(to_fs_path(params.workspace_folders[0].uri) or ".")
    if params.root_uri:
        return Path(to_fs_path(params.root_uri) or ".")
    return find_project_root(Path.cwd())


def build_server() -> CoveServer:
    """A server with every feature registered."""
    server = CoveServer()

    @server.feature(types.INITIALIZE)
    def on_initialize(ls: CoveServer, params: types.InitializeParams) -> None:
        ls.project_root = _root_of(params)
        ls.context = WorkspaceContext(ls.project_root)
        ls.completions = CompletionService(ls.load_settings(params.initialization_options))

    @server.feature(types.INITIALIZED)
    def on_initialized(ls: CoveServer, params: types.InitializedParams) -> None:
        ls.report_config_error()
        ls.watch_loading(ls.service().start())

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def on_configuration(ls: CoveServer, params: types.DidChangeConfigurationParams) -> None:
        ls.service().reconfigure(ls.load_settings(params.settings))
        ls.report_config_error()

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def on_change(ls: CoveServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        last = params.content_changes[-1] if params.content_changes else None
        line = last.range.start.line if isinstance(last, types.TextDocumentContentChangePartial) else 0
        ls.context.note_edit(uri, ls.workspace.get_text_document(uri).source, line)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def on_close(ls: CoveServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.service().forget(params.text_document.uri)
        ls.context.forget(params.text_document.uri)

    @server.command("cove.accepted")
    def on_accepted(ls: CoveServer, uri: str) -> None:
        ls.stats.accepted(uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def on_inline_completion(ls: CoveServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        text, offset = ls.cursor(params.text_document.uri, params.position)
        completion = await ls.complete(params.text_document.uri, text, offset)
        accepted = types.Command(title="Cove: accepted", command="cove.accepted", arguments=[params.text_document.uri])
        return inline_completion_list(completion.text, params.position, accepted)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def on_completion(ls: CoveServer, params: types.CompletionParams) -> types.CompletionList:
        text_capabilities = ls.client_capabilities.text_document
        if text_capabilities is not None and text_capabilities.inline_completion is not None:
            # Clients with inline completion show the suggestion as ghost text; a second copy would be noise.
            return types.CompletionList(is_incomplete=False, items=[])
        text, offset = ls.cursor(params.text_document.uri, params.position)
        completion = await ls.complete(params.text_document.uri, text, offset)
        line_prefix = text[text.rfind("\n", 0, offset) + 1 : offset]
        return completion_list(completion.text, line_prefix, params.position)

    agent_features.register(server)

    @server.feature(types.SHUTDOWN)
    def on_shutdown(ls: CoveServer, params: None) -> None:
        ls.shut_down = True
        ls.stats.flush()
        if ls.completions is not None:
            ls.completions.close()

    @server.feature(types.EXIT)
    def on_exit(ls: CoveServer, params: None) -> None:
        # pygls would wait for its stdin reader thread, which blocks until the client closes the pipe; the
        # protocol says to exit now, with status 1 when no shutdown request came first.
        if ls.completions is not None and not ls.shut_down:
            ls.completions.close()
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0 if ls.shut_down else 1)

    return server


def run_stdio() -> None:
    """Serve LSP over stdin and stdout until the client exits."""
    server = build_server()
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        server.start_io()
