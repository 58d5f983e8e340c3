"""The completion engine as the server runs it: loaded once in its own worker thread, newest request per document."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from cove.config import LoadedConfig
from cove.errors import Cancelled, ModelError
from cove.inference.completion_backend import Generated, Warmed
from cove.inference.completion_routing import RoutedCompletions
from cove.inference.daemon_completions import DaemonCompletions
from cove.inference.engine import Completion, CompletionEngine, CompletionRequest, WindowContext, WritingRequest
from cove.inference.local_model import LocalModel
from cove.inference.model_files import locate_model
from cove.inference.routing import Slot, chain
from cove.server.latest_only import LatestOnly
from cove.server.warming import IdleWarming, WarmJob

logger = logging.getLogger(__name__)


def load_engine(
    loaded: LoadedConfig, on_daemon_loading: Callable[[], Callable[[], None]] | None = None
) -> CompletionEngine:
    """Locate (assembling if needed) and load the model, and build the engine around it."""
    config = loaded.config

    def load() -> LocalModel:
        path = locate_model(config.model)
        model = LocalModel(path, config.model)
        model.tokens_starting_with(b"")  # index the vocabulary now, not on the first keystroke
        logger.info("loaded %s (%s)", path, model.description)
        return model

    # Loaded now when it serves first; else only once the targets before it fail (the daemon holds the model).
    serves_first = chain(config.routing, Slot.COMPLETE)[0] == "local"
    engine = CompletionEngine(load() if serves_first else load, config.completion)
    engine.on_daemon_loading = on_daemon_loading
    engine.reroute(config)
    first = engine.backend.targets[0] if isinstance(engine.backend, RoutedCompletions) else None
    if isinstance(first, DaemonCompletions):
        try:  # while the editor shows the loading progress, not on the first keystroke
            first.load()
        except ModelError as err:
            logger.warning("the daemon's model: %s; the next target serves meanwhile", err)
    logger.info("completions from %s", engine.describe())
    return engine


class CompletionService:
    """Owns the model's worker thread; every model call runs there, never on the event loop."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cove-model")
        self._latest = LatestOnly(self._executor)
        self._engine: Future[CompletionEngine] | None = None
        #: The backend that generated the last suggestion ("local", "llama-server", ...; "" before the first).
        self.answered_last = ""
        self.warming = IdleWarming(self._executor)
        #: Set by the server: shows that the daemon loads its model for a request, until it is answered.
        self.on_daemon_loading: Callable[[], Callable[[], None]] | None = None

    def start(self) -> Future[CompletionEngine]:
        """Begin loading the model (once); requests that come meanwhile wait for it."""
        if self._engine is None:
            self._engine = self._executor.submit(load_engine, self.loaded, self._daemon_loading)
        return self._engine

    def _daemon_loading(self) -> Callable[[], None]:
        return self.on_daemon_loading() if self.on_daemon_loading is not None else lambda: None

    def reconfigure(self, loaded: LoadedConfig) -> None:
        """Apply new settings: the model is reloaded only when its own settings changed."""
        previous, self.loaded = self.loaded, loaded
        if self._engine is None:
            return
        if loaded.config.model != previous.config.model:
            old = self._engine
            self._engine = None
            self._executor.submit(_close_engine, old)
            self.start()
        else:
            self._executor.submit(_set_engine_config, self._engine, loaded)

    async def complete(self, uri: str, text: str, offset: int, context: WindowContext | None = None) -> Completion:
        """A completion for the cursor at `offset`; raises CancelledError when a newer request supersedes it.
        `context` gives the workspace context for the window's anchor line (called in the model's thread)."""
        mark = self.warming.completion_started()
        asked_model, follow_up = False, None
        try:
            engine = await asyncio.wrap_future(self.start())
            request = CompletionRequest(uri, text, offset, context)

            def work(stop: threading.Event) -> Completion:
                return engine.complete(request, stop)

            completion = await self._latest.run(uri, work)
            asked_model = completion.stop != "suggestion"
            if asked_model:
                self.answered_last = completion.backend
            if completion.short_window:  # answered at once from the short window: the full one follows while idle
                follow_up = self._warm_job(request, extend=True)
            return completion
        except Cancelled as err:
            raise asyncio.CancelledError(str(err)) from err
        finally:
            self.warming.completion_finished(mark, asked_model, follow_up)

    async def write(self, request: WritingRequest) -> Generated:
        """The text the model writes for a local action, in the model's thread; a newer request for the same
        `request.document` supersedes it (CancelledError)."""
        engine = await asyncio.wrap_future(self.start())
        try:
            return await self._latest.run(request.document, lambda stop: engine.write(request, stop))
        except Cancelled as err:
            raise asyncio.CancelledError(str(err)) from err

    def warm(self, uri: str, text: str, offset: int, context: WindowContext | None = None) -> None:
        """Prefill the window of a completion at `offset` while the model is idle (the lowest priority: any
        completion stops it); returns at once."""
        loading = self.start()
        if not self.loaded.config.completion.warm_cursor or (loading.done() and loading.exception() is not None):
            return  # turned off, or the model did not load (the user was told)
        self.warming.request(self._warm_job(CompletionRequest(uri, text, offset, context)))

    def _warm_job(self, request: CompletionRequest, extend: bool = False) -> WarmJob:
        """Warming of the full window at `request`'s cursor, for the model's thread; with `extend`, the short answer
        given there is then answered again from the full window (`CompletionEngine.extend`)."""

        def work(stop: threading.Event) -> Warmed:
            engine = self._engine  # the one loaded when this runs (a new model may have replaced the old)
            if engine is None or not engine.done():
                return Warmed(0, False)  # goes on after the loading, which runs first in this thread
            loaded = engine.result()
            return loaded.extend(request, stop) if extend else loaded.warm(request, stop)

        return WarmJob(request.document, work)

    def status(self) -> dict[str, Any]:
        """Who serves completions and why the other targets of `[routing] complete` do not, for the editor."""
        engine = self._engine
        if engine is None or not engine.done():
            return {"serving": "the local model (loading)", "targets": []}
        if engine.exception() is not None:
            return {"serving": "nothing", "error": str(engine.exception()), "targets": []}
        loaded = engine.result()
        backend = loaded.backend
        targets = backend.status() if isinstance(backend, RoutedCompletions) else []
        return {
            "serving": loaded.describe(),
            "targets": [dataclasses.asdict(t) for t in targets],
            "answered_last": self.answered_last,
        }

    def forget(self, uri: str) -> None:
        """Drop what is kept for a closed document."""
        self._latest.cancel(uri)
        self.warming.forget(uri)
        if self._engine is not None:
            engine = self._engine
            self._executor.submit(lambda: engine.result().forget(uri))

    def warm_status(self) -> dict[str, int]:
        """What warming did, for the editor: places requested, prefilled, abandoned, tokens evaluated."""
        return self.warming.counts.as_dict()

    def close(self) -> None:
        """Stop the worker and free the model."""
        self.warming.close()
        if self._engine is not None:
            self._executor.submit(_close_engine, self._engine)
        self._executor.shutdown(wait=True, cancel_futures=True)


def _close_engine(engine: Future[CompletionEngine]) -> None:
    if engine.done() and engine.exception() is None:
        engine.result().close()


def _set_engine_config(engine: Future[CompletionEngine], loaded: LoadedConfig) -> None:
    if engine.done() and engine.exception() is None:
        engine.result().reroute(loaded.config)
