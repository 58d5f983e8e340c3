"""Cove's language server: thin LSP handlers over the completion service."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from cove import __version__
from cove.config import CoveConfig, LoadedConfig, apply_layer, env_settings, find_project_root, load_config
from cove.errors import ConfigError, CoveError, InputError
from cove.inference.completion.daemon_completions import HOST_LOADING
from cove.inference.completion.engine import Completion, CompletionEngine, WindowContext
from cove.inference.completion.prompt_window import choose_anchor, line_starts
from cove.inference.model.fitness import check_agent
from cove.protocol.jobs import PromptContext
from cove.runtime import state_directory
from cove.server.actions import agent_features, local_features
from cove.server.actions.agent_bridge import AgentBridge
from cove.server.completion.completions import CompletionClient
from cove.server.completion.convert import completion_list, inline_completion_list
from cove.server.completion.stats import SuggestionStats
from cove.server.context.code_context import ParsedDocuments
from cove.server.context.project_index import IndexedDefinition, ProjectIndex
from cove.server.context.workspace_context import WorkspaceContext
from cove.server.cove_methods import CURSOR, SUGGESTION_READY, YANKED, CursorParams, YankedParams
from cove.server.edge import CoveProtocol
from cove.server.positions import Cursor, document_key, locate, open_document

logger = logging.getLogger(__name__)


class CoveServer(LanguageServer):
    """The language server and the state it keeps: settings and the completion service."""

    def __init__(self) -> None:
        super().__init__(
            "cove",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=CoveProtocol,
        )
        self.project_root: Path | None = None
        self.completions: CompletionClient | None = None
        self._config_error: str | None = None
        #: The editor's settings as last sent (config.toml's shape) and valid; agent runs started here get them.
        self.editor_settings: dict[str, Any] | None = None
        self.shut_down = False
        self._loading_watch: asyncio.Task[None] | None = None
        self.parsed = ParsedDocuments()
        self.context = WorkspaceContext(None)
        self.stats = SuggestionStats(state_directory() / "stats.json")
        self.agent = AgentBridge(self, self.work_done_progress)
        self._progress_ids = itertools.count(1)
        #: The project's code index in the daemon (None until `initialized`, or when `[index] enabled = false`).
        self.index: ProjectIndex | None = None
        self._background: set[asyncio.Task[None]] = set()

    def load_settings(self, editor_settings: Any) -> LoadedConfig:
        """Read every config layer; on an error keep what worked before and tell the user why."""
        settings = editor_settings.get("cove", editor_settings) if isinstance(editor_settings, dict) else None
        try:
            loaded = load_config(self.project_root, os.environ, settings or None)
            self._config_error = None
            self.editor_settings = settings or None
        except ConfigError as err:
            self._config_error = f"Cove: {err}"
            logger.error("%s", err)
            loaded = self.completions.loaded if self.completions else self._without_editor_settings()
        return loaded

    def _without_editor_settings(self) -> LoadedConfig:
        """Every layer but the editor's (the config files, `COVE_*`); if a file is what failed, the defaults with
        each `COVE_*` variable that is valid (the environment still decides, e.g., where completions come from)."""
        try:
            return load_config(self.project_root, os.environ, None)
        except ConfigError:
            config, sources = CoveConfig(), []
            for source, layer in env_settings(os.environ).items():
                with contextlib.suppress(ConfigError):
                    config = apply_layer(config, layer, source)
                    sources.append(source)
            return LoadedConfig(config, tuple(sources), None)

    def report_config_error(self) -> None:
        """Show the last config error in the editor, once."""
        if self._config_error:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Error, self._config_error))
            self._config_error = None

    def watch_loading(self, loading: Future[CompletionEngine]) -> None:
        """Show the model's loading as `$/progress` where the client supports it, and a failure as an error; later
        loads of the daemon's model (after it was freed while idle) as `$/progress` too."""
        loop = asyncio.get_running_loop()
        self._loading_watch = loop.create_task(self._report_loading(loading))
        HOST_LOADING.subscribe(lambda model: self._daemon_loading(loop, model))
        self.service().on_suggestion_ready = self.suggestion_ready

    def suggestion_ready(self, uri: str) -> None:
        """`cove/suggestionReady`: the suggestion last shown early at the document's cursor is whole now; the editor
        plugins ask again (answered at once, without the model)."""
        self.protocol.notify(SUGGESTION_READY, {"textDocument": {"uri": uri}})

    async def _report_loading(self, loading: Future[CompletionEngine]) -> None:
        token = await self.begin_progress("loading the local model")
        try:
            engine = await asyncio.wrap_future(loading)
            message = f"ready: completions from {engine.describe()}"
        except CoveError as err:
            message = f"the local model did not load: {err}"
            self.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"Cove: {message}"))
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    async def open_index(self, index: ProjectIndex) -> None:
        """Open the project's index in the daemon, its build shown as `$/progress` (done of total files)."""
        token = None
        async for status in index.open():
            if status["building"] and token is None:
                token = await self.begin_progress(f"indexing {index.root.name}", title="Cove index")
            if token is None:
                continue
            if status["building"]:
                percent = 100 * status["done"] // status["total"] if status["total"] else 0
                report = types.WorkDoneProgressReport(message=f"{status['done']} of {status['total']} files")
                report.percentage = percent
                self.work_done_progress.report(token, report)
            else:
                message = f"indexed: {status['files']} files, {status['chunks']} chunks"
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    def index_definitions(self, names: list[str]) -> list[IndexedDefinition]:
        """Definitions of `names` from the project's index, as far as this server knows them (from any thread)."""
        return self.index.definitions(names) if self.index is not None else []

    def index_neighbours(self, key: str, query: str, exclude: str | None) -> tuple[tuple[str, int, str], ...]:
        """The project index's chunks most like `query` (BM25), remembered under `key` (from any thread)."""
        return self.index.neighbours(key, query, exclude) if self.index is not None else ()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background, kept referenced until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def begin_progress(self, message: str, title: str = "Cove") -> str | None:
        """A `$/progress` begun with `message`, where the client supports it: its token; else None."""
        window = self.client_capabilities.window
        if not (window and window.work_done_progress):
            return None
        token = f"cove-progress-{next(self._progress_ids)}"
        try:
            await self.work_done_progress.create_async(token)
            self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, message=message))
        except Exception:  # a client that refuses the token still gets completions
            return None
        return token

    def _daemon_loading(self, loop: asyncio.AbstractEventLoop, model: str) -> Callable[[], None]:
        """From the model's thread: the daemon loads `model` for a request; shown until the request is answered."""
        began = asyncio.run_coroutine_threadsafe(self.begin_progress(f"loading {model} in the Cove daemon"), loop)

        async def end() -> None:
            token = await asyncio.wrap_future(began)
            if token is not None:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="ready"))

        def answered() -> None:
            asyncio.run_coroutine_threadsafe(end(), loop)

        return answered

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors outside a request's reply (a frame that is not JSON, a failing notification) are logged, never
        shown to the user as a dialog: they are the client's protocol errors, not something the user can act on."""
        logger.warning("%s: %s", getattr(source, "__name__", source), error)

    def cursor(self, uri: str, position: types.Position) -> Cursor | None:
        """Where a request points in an open document (InvalidParams when it is not open); None when the line is
        past the end of the document."""
        document = open_document(self.workspace, uri)
        return locate(uri, document.source, position, document.position_codec)

    async def complete(self, cursor: Cursor) -> Completion:
        """Run a completion with the workspace's context; every suggestion is counted for `cove stats`."""
        completion = await self.service().complete(cursor.uri, cursor.text, cursor.offset, self.context_at(cursor))
        self.stats.shown(cursor.uri, completion.text, typed_through=completion.stop == "suggestion")
        return completion

    def warm(self, cursor: Cursor) -> None:
        """Have the model evaluate the window of a completion at `cursor` while the user is idle."""
        self.service().warm(cursor.uri, cursor.text, cursor.offset, self.context_at(cursor))

    def context_at(self, cursor: Cursor) -> WindowContext:
        """The workspace context of a window at `cursor`, given the window's anchor line."""
        budget = self.service().loaded.config.completion.context_chars
        uri, text, offset = cursor.uri, cursor.text, cursor.offset

        def context(anchor_line: int) -> PromptContext:
            return self.context.gather_prompt(uri, text, anchor_line, budget, offset)

        return context

    def agent_unfit(self) -> str:
        """Why the agent's actions cannot work with the current settings ("" when they can): read from the model's
        header once per settings, so a remote server or an instruct GGUF set in the editor enables them at once."""
        return _agent_unfit(self.service().loaded.config)

    def service(self) -> CompletionClient:
        """The completion service, created with default settings if the client skipped `initialize`'s options."""
        if self.completions is None:
            self.completions = CompletionClient(self.load_settings(None))
        return self.completions


@functools.lru_cache(maxsize=8)
def _agent_unfit(config: CoveConfig) -> str:
    fitness = check_agent(config)
    return "" if fitness.fit else f"{fitness.reason}. To enable it, {fitness.hint}."


def _root_of(params: types.InitializeParams) -> Path | None:
    if params.workspace_folders:
        return Path(to_fs_path(params.workspace_folders[0].uri) or ".")
    if params.root_uri:
        return Path(to_fs_path(params.root_uri) or ".")
    return find_project_root(Path.cwd())


def on_initialize(ls: CoveServer, params: types.InitializeParams) -> None:
    ls.project_root = _root_of(params)
    ls.completions = CompletionClient(ls.load_settings(params.initialization_options))
    ls.context = WorkspaceContext(
        ls.project_root,
        index=ls.index_definitions,
        neighbours=ls.index_neighbours,
        sources=frozenset(ls.service().loaded.config.completion.context_sources),
    )


def on_initialized(ls: CoveServer, params: types.InitializedParams) -> None:
    ls.report_config_error()
    ls.watch_loading(ls.service().start())
    if ls.project_root is not None and ls.service().loaded.config.index.enabled:
        ls.index = ProjectIndex(ls.agent.link, ls.project_root)
        ls.spawn(ls.open_index(ls.index))


def on_configuration(ls: CoveServer, params: types.DidChangeConfigurationParams) -> None:
    ls.service().reconfigure(ls.load_settings(params.settings))
    ls.context.sources = frozenset(ls.service().loaded.config.completion.context_sources)
    ls.report_config_error()


def on_change(ls: CoveServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    last = params.content_changes[-1] if params.content_changes else None
    line = last.range.start.line if isinstance(last, types.TextDocumentContentChangePartial) else 0
    ls.context.note_edit(document_key(uri), open_document(ls.workspace, uri).source, line)


def on_close(ls: CoveServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.service().forget(document_key(params.text_document.uri))
    ls.context.forget(document_key(params.text_document.uri))


def on_accepted(ls: CoveServer, uri: str) -> None:
    ls.stats.accepted(document_key(uri))


async def on_show_context(ls: CoveServer, *arguments: Any) -> dict[str, Any]:
    """The workspace context a completion at (uri, {line, character}) gets, for the editor to show (gathered
    off the event loop, so that the index's neighbours of a new window are waited for as a completion would)."""
    if len(arguments) != 2 or not isinstance(arguments[0], str) or not isinstance(arguments[1], dict):
        raise InputError("cove.showContext takes a document's URI and a position {line, character}")
    line, character = arguments[1].get("line"), arguments[1].get("character")
    if not (isinstance(line, int) and isinstance(character, int) and line >= 0 and character >= 0):
        raise InputError(f"cove.showContext: not a position: {arguments[1]!r}")
    cursor = ls.cursor(arguments[0], types.Position(line, character))
    if cursor is None:
        return {"context": "", "anchor_line": 0}
    completion = ls.service().loaded.config.completion
    anchor = choose_anchor(line_starts(cursor.text), cursor.offset, None, completion.max_prefix_chars)
    found = await asyncio.to_thread(
        ls.context.gather_prompt, cursor.uri, cursor.text, anchor, completion.context_chars, cursor.offset
    )
    return {"context": found.text, "anchor_line": anchor}


def on_status(ls: CoveServer, *arguments: Any) -> dict[str, Any]:
    unfit = ls.agent_unfit()
    agent = {"fit": not unfit, "reason": unfit}
    service = ls.service()
    return {
        "completions": service.status(),
        "warm": service.warm_status(),
        "typing": service.typing.as_dict(),
        "agent": agent,
        "index": ls.index.status() if ls.index is not None else {"state": "off"},
    }


def on_cursor(ls: CoveServer, params: CursorParams) -> None:
    cursor = ls.cursor(params.text_document.uri, params.position)
    if cursor is not None:
        ls.context.recent.note_seen(document_key(cursor.uri), cursor.text, cursor.position.line, "viewed")
        ls.warm(cursor)


def on_yanked(ls: CoveServer, params: YankedParams) -> None:
    uri = params.text_document.uri
    start, end = params.range.start.line, params.range.end.line
    ls.context.recent.note_seen(document_key(uri), open_document(ls.workspace, uri).source, start, "yanked", end)


async def on_inline_completion(ls: CoveServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    cursor = ls.cursor(params.text_document.uri, params.position)
    if cursor is None:
        return types.InlineCompletionList(items=[])
    completion = await ls.complete(cursor)
    accepted = types.Command(title="Cove: accepted", command="cove.accepted", arguments=[params.text_document.uri])
    return inline_completion_list(completion.text, cursor.position, accepted)


async def on_completion(ls: CoveServer, params: types.CompletionParams) -> types.CompletionList:
    text_capabilities = ls.client_capabilities.text_document
    if text_capabilities is not None and text_capabilities.inline_completion is not None:
        # Clients with inline completion show the suggestion as ghost text; a second copy would be noise.
        return types.CompletionList(is_incomplete=False, items=[])
    cursor = ls.cursor(params.text_document.uri, params.position)
    if cursor is None:
        return types.CompletionList(is_incomplete=False, items=[])
    completion = await ls.complete(cursor)
    line_prefix = cursor.text[cursor.text.rfind("\n", 0, cursor.offset) + 1 : cursor.offset]
    return completion_list(completion.text, line_prefix, cursor.position)


def on_shutdown(ls: CoveServer, params: None) -> None:
    ls.shut_down = True
    ls.stats.flush()
    if ls.completions is not None:
        ls.completions.close()


def on_exit(ls: CoveServer, params: None) -> None:
    # pygls would wait for its stdin reader thread, which blocks until the client closes the pipe; the
    # protocol says to exit now, with status 1 when no shutdown request came first.
    if ls.completions is not None and not ls.shut_down:
        ls.completions.close()
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0 if ls.shut_down else 1)


#: Every LSP method the server handles: (method, its registration options, the handler).
FEATURES: list[tuple[str, Any, Callable[..., Any]]] = [
    (types.INITIALIZE, None, on_initialize),
    (types.INITIALIZED, None, on_initialized),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, None, on_configuration),
    (types.TEXT_DOCUMENT_DID_CHANGE, None, on_change),
    (types.TEXT_DOCUMENT_DID_CLOSE, None, on_close),
    (CURSOR, None, on_cursor),
    (YANKED, None, on_yanked),
    (types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions(), on_inline_completion),
    (types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]), on_completion),
    (types.SHUTDOWN, None, on_shutdown),
    (types.EXIT, None, on_exit),
]
#: Cove's own commands of the language server (the agent's and local actions' register themselves).
COMMANDS: dict[str, Callable[..., Any]] = {
    "cove.accepted": on_accepted,
    "cove.showContext": on_show_context,
    "cove.status": on_status,
}


def build_server() -> CoveServer:
    """A server with every feature registered."""
    server = CoveServer()
    for method, options, handler in FEATURES:
        server.feature(method, options)(handler)
    for name, command in COMMANDS.items():
        server.command(name)(command)
    agent_features.register(server)
    local_features.register(server)
    return server


def run_stdio() -> None:
    """Serve LSP over stdin and stdout until the client exits."""
    server = build_server()
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        server.start_io()
