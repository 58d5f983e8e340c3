"""The completion engine as the server runs it: loaded once in its own worker thread, newest request per document."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from cove.config import LoadedConfig
from cove.errors import Cancelled, ModelError, ModelRefused
from cove.inference.completion.completion_routing import RoutedCompletions
from cove.inference.completion.daemon_completions import DaemonCompletions
from cove.inference.completion.engine import (
    Completion,
    CompletionEngine,
    CompletionRequest,
    WindowContext,
    WritingRequest,
)
from cove.inference.completion.stop_rules import choose_mode
from cove.inference.routing import Slot, chain
from cove.protocol.jobs import Generated, Warmed
from cove.protocol.params import ModelSpec

if TYPE_CHECKING:
    from cove.inference.model.local_model import LocalModel
from cove.server.completion.latest_only import LatestOnly
from cove.server.completion.live_suggestions import LiveSuggestion, TypingCounts, Verdict, line_around
from cove.server.completion.warming import IdleWarming, WarmJob

logger = logging.getLogger(__name__)


def load_engine(loaded: LoadedConfig) -> CompletionEngine:
    """Build the engine and have its model loaded: the host's (the daemon's) by default, else its own."""
    config = loaded.config
    chosen = f"model.path set by {loaded.origin('model.path')}"

    def load() -> LocalModel:
        from cove.inference.model.local_model import open_local_model  # the model runtime: only when this server loads

        try:
            return open_local_model(config.model)
        except ModelError as err:
            raise ModelError(f"{err} ({chosen})") from err

    # Loaded now when it serves first; else only once the targets before it fail (the daemon holds the model).
    serves_first = chain(config.routing, Slot.COMPLETE)[0] == "local"
    engine = CompletionEngine(load() if serves_first else load, config.completion)
    engine.reroute(config)
    first = engine.backend.targets[0] if isinstance(engine.backend, RoutedCompletions) else None
    if isinstance(first, DaemonCompletions):
        try:  # while the editor shows the loading progress, not on the first keystroke
            first.load()
        except ModelRefused as err:  # the model itself: the next target could not load it either
            engine.close()
            raise ModelError(f"{err} ({chosen})") from err
        except ModelError as err:
            logger.warning("the daemon's model: %s; the next target serves meanwhile", err)
    logger.info("completions from %s", engine.describe())
    return engine


class CompletionClient:
    """Owns the model's worker thread; every model call runs there, never on the event loop."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cove-model")
        self._latest = LatestOnly(self._executor)
        #: Per document, the generation that keystrokes are answered from (live_suggestions.py).
        self._live: dict[str, LiveSuggestion] = {}
        self._newest: dict[str, object] = {}
        self._unanswered: dict[str, int] = {}
        self.typing = TypingCounts()
        self._engine: Future[CompletionEngine] | None = None
        #: The backend that generated the last suggestion ("local", "llama-server", ...; "" before the first).
        self.answered_last = ""
        #: Why the last generation that asked the model ended ("rule", "end", "tokens", "time"; "" before the first).
        self.last_stop = ""
        self.warming = IdleWarming(self._executor)
        #: Set by the server: shows that the daemon loads its model for a request, until it is answered.
        #: Set by the server: called (on the event loop) with a document's URI when the generation its last keystroke
        #: was answered from early has ended with more, and no keystroke waits: the editor may ask again to show it.
        self.on_suggestion_ready: Callable[[str], None] | None = None

    def start(self) -> Future[CompletionEngine]:
        """Begin loading the model (once); requests that come meanwhile wait for it."""
        if self._engine is None:
            self._engine = self._executor.submit(load_engine, self.loaded)
        return self._engine

    def reconfigure(self, loaded: LoadedConfig) -> None:
        """Apply new settings: the model is reloaded only when its own settings changed."""
        previous, self.loaded = self.loaded, loaded
        for live in self._live.values():  # made under the old settings: no keystroke is answered from them
            live.stop.set()
        self._live.clear()
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
        `context` gives the workspace context for the window's anchor line (called in the model's thread).

        A keystroke that types what the document's running generation is writing is answered from it
        (live_suggestions.py); one that types something else stops it and starts the next."""
        mark = self.warming.completion_started()
        ticket = self._newest[uri] = object()
        # A keystroke while the last was unanswered: the user types on, so a partial answer is worth showing now.
        hurried = self._unanswered.get(uri, 0) > 0
        self._unanswered[uri] = self._unanswered.get(uri, 0) + 1
        try:
            engine = await asyncio.wrap_future(self.start())
            request = CompletionRequest(uri, text, offset, context)
            before, line_suffix = line_around(text, offset)
            mine: LiveSuggestion | None = None
            while True:
                live = self._live.get(uri)
                typed = None  # `reuse_suggestions = false`: no keystroke is answered from another's generation
                if live is not None and (live is mine or engine.config.reuse_suggestions):
                    typed = live.typed_at(before, line_suffix)
                if live is None or typed is None or live.verdict(typed) is Verdict.DISAGREES:
                    if self._newest.get(uri) is not ticket:  # only the newest keystroke stops a generation
                        raise asyncio.CancelledError("a newer keystroke supersedes this one")
                    if live is not None:
                        live.stop.set()
                    live = mine = self._begin(engine, request, mark, before, line_suffix)
                    typed = ""
                early = hurried or (bool(typed) and not live.finished)
                answer = await live.answer(typed, early)
                if answer is None and live is mine and isinstance(live.error, Exception):
                    raise live.error  # this keystroke's own generation failed: trying again would fail the same way
                if answer is None:
                    continue  # it went another way than the keystroke: the newest keystroke starts the next
                self.typing.shared += live is not mine
                self.typing.early += answer.stop == "partial"
                return answer
        finally:
            count = self._unanswered.get(uri, 1) - 1
            if count:
                self._unanswered[uri] = count
            else:
                self._unanswered.pop(uri, None)
            if self._newest.get(uri) is ticket:
                del self._newest[uri]
            self.warming.completion_finished()

    def _begin(
        self, engine: CompletionEngine, request: CompletionRequest, mark: int, before: str, line_suffix: str
    ) -> LiveSuggestion:
        """Start a generation at `request`'s cursor in the model's thread; it runs on when the request is cancelled
        (a keystroke that types what it writes is answered from it) until its own end or `stop`."""
        loop = asyncio.get_running_loop()
        self._stop_others(request.document)  # one model: the user is in this document now
        line_prefix = before[before.rfind("\n") + 1 :]
        mode = choose_mode(line_prefix, line_suffix, engine.config.multiline)
        live = self._live[request.document] = LiveSuggestion(request.document, before, line_suffix, mode)
        self.typing.generations += 1

        def grew(text: str) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is exiting
                loop.call_soon_threadsafe(live.grew, text)

        def ended(future: asyncio.Future[Completion]) -> None:
            error = None if future.cancelled() else future.exception()
            completion = None if future.cancelled() or error is not None else future.result()
            live.ended(completion, error or (asyncio.CancelledError() if completion is None else None))
            self._generation_ended(live, request, mark)

        def work() -> Completion:
            try:
                return engine.complete(request, live.stop, grew)
            except Cancelled as err:
                raise asyncio.CancelledError(str(err)) from err

        future = loop.run_in_executor(self._executor, work)
        future.add_done_callback(ended)
        return live

    def _stop_others(self, document: str | None) -> None:
        """Stop the generations still running in other documents than `document` (every one, for None): no
        keystroke there will type them on while the user works elsewhere, and the model's one thread is needed here."""
        for uri, live in self._live.items():
            if uri != document and not live.finished:
                live.stop.set()

    def _generation_ended(self, live: LiveSuggestion, request: CompletionRequest, mark: int) -> None:
        """What a generation's end tells the rest: its counts, the warming that follows a short-window answer, and the
        editor, when the suggestion it was shown early has grown and nothing else is asked there."""
        completion = live.completion
        self.typing.stopped += completion is None and live.stop.is_set()
        asked_model = completion is not None and completion.stop != "suggestion"
        follow_up = None
        if completion is not None and asked_model:
            self.answered_last, self.last_stop = completion.backend, completion.stop
            if completion.short_window:  # answered from the short window: the full one follows while idle
                follow_up = self._warm_job(request, extend=True)
            logger.debug(
                "generation in %s: %s after %.0f ms (%d prompt tokens, %d reused, %d generated%s)",
                request.document,
                completion.stop,
                completion.seconds * 1000,
                completion.prompt_tokens,
                completion.reused_tokens,
                completion.generated_tokens,
                ", short window" if completion.short_window else "",
            )
        waiting = request.document in self._newest or self._live.get(request.document) is not live
        if live.grew_after_answer and not waiting and self.on_suggestion_ready is not None:
            self.on_suggestion_ready(request.document)
        self.warming.generation_finished(mark, asked_model, follow_up)

    async def write(self, request: WritingRequest) -> Generated:
        """The text the model writes for a local action, in the model's thread; a newer request for the same
        `request.document` supersedes it (CancelledError)."""
        engine = await asyncio.wrap_future(self.start())
        self._stop_others(None)  # an action the user asked for goes before suggestions still being written
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
            loaded, started = engine.result(), time.perf_counter()
            warmed = loaded.extend(request, stop) if extend else loaded.warm(request, stop)
            logger.debug(
                "warmed %s: %d tokens in %.0f ms%s",
                request.document,
                warmed.tokens,
                (time.perf_counter() - started) * 1000,
                "" if warmed.done else " (stopped)",
            )
            return warmed

        return WarmJob(request.document, work)

    def model_status(self) -> dict[str, Any]:
        """The local model this project asks for (of the host, or of this server when it serves alone): its file,
        and the setting that chose it."""
        spec = ModelSpec.of(self.loaded.config)
        return {
            "path": spec.model.path or "the default model",
            "chosen_by": self.loaded.origin("model.path"),
            "n_ctx": spec.model.n_ctx,
        }

    def status(self) -> dict[str, Any]:
        """Who serves completions and why the other targets of `[routing] complete` do not, for the editor."""
        engine = self._engine
        model = self.model_status()
        if engine is None or not engine.done():
            return {"serving": "the local model (loading)", "targets": [], "model": model}
        if engine.exception() is not None:
            return {"serving": "nothing", "error": str(engine.exception()), "targets": [], "model": model}
        loaded = engine.result()
        backend = loaded.backend
        targets = backend.status() if isinstance(backend, RoutedCompletions) else []
        return {
            "model": model,
            "serving": loaded.describe(),
            "targets": [dataclasses.asdict(t) for t in targets],
            "answered_last": self.answered_last,
            "last_stop": self.last_stop,
        }

    def forget(self, uri: str) -> None:
        """Drop what is kept for a closed document."""
        self._latest.cancel(uri)
        live = self._live.pop(uri, None)
        if live is not None:
            live.stop.set()
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
