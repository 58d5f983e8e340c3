"""Warming: while the user is idle, the model evaluates the prompt of the place the cursor is, so that the first
keystroke there finds its window ready instead of paying for a cold prefill.

Warming has the lowest priority. It runs in the model's thread only while no completion is pending; a completion
that arrives stops it at its next chunk (what it evaluated is kept, and it goes on once the model is idle again).
There is one slot: a newer place replaces the one waiting, and a completion that asked the model replaces it with
what that completion left to do (or with nothing: it has just made the model hold the place the user is at).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from cove.protocol.jobs import Warmed

logger = logging.getLogger(__name__)

#: Seconds the model must have been idle after a completion before warming goes on: while keystrokes come back to
#: back (a replay, a paste) the model serves only them.
IDLE_AFTER_COMPLETION_S = 0.02

#: Background work for the model's thread: it stops at its next chunk once the event is set.
WarmWork = Callable[[threading.Event], Warmed]


@dataclass(frozen=True)
class WarmJob:
    """Warming of a place in a document: dropped when the document is closed."""

    document: str
    work: WarmWork


@dataclass
class WarmCounts:
    """What warming did since the server started, for `cove.status`."""

    #: Places the editor asked to warm (`cove/cursor`).
    requested: int = 0
    #: Warms that finished: the whole window was ready for the next keystroke.
    prefilled: int = 0
    #: Warms stopped by a completion or a newer place before they finished (what they evaluated is kept).
    abandoned: int = 0
    #: Prompt tokens evaluated by warming.
    tokens: int = 0
    #: Completions answered at once from the short first window at a cold place; their full window was warmed next.
    short_answers: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class _Running:
    job: WarmJob
    stop: threading.Event


class IdleWarming:
    """The one slot of background model work and its counts; every method runs on the event loop."""

    def __init__(self, executor: Executor, idle_s: float = IDLE_AFTER_COMPLETION_S) -> None:
        self.counts = WarmCounts()
        self._executor = executor
        self._idle_s = idle_s
        self._waiting: WarmJob | None = None
        self._running: _Running | None = None
        self._pending = 0
        #: Bumped by every request, so that a completion that finishes does not drop a place sent after it began.
        self._generation = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> bool:
        """Whether some warming is still to do."""
        return self._waiting is not None

    @property
    def running(self) -> bool:
        """Whether some warming is running in the model's thread (or handed to it)."""
        return self._running is not None

    def request(self, job: WarmJob) -> None:
        """Warm a new place (the editor's cursor), replacing the place waiting; starts now if the model is idle."""
        self.counts.requested += 1
        self._generation += 1
        self._waiting = job
        self._stop_running()
        self._start()

    def forget(self, document: str) -> None:
        """A document was closed: drop its warming, waiting or running."""
        if self._waiting is not None and self._waiting.document == document:
            self._waiting = None
        if self._running is not None and self._running.job.document == document:
            self._running.stop.set()

    def completion_started(self) -> int:
        """A completion is pending: stop warming at its next chunk. Returns a mark for `generation_finished`."""
        self._pending += 1
        self._stop_running()
        return self._generation

    def completion_finished(self) -> None:
        """A completion request is answered (or cancelled); warming goes on once the model has been idle a moment."""
        self._pending -= 1
        self._resume_soon()

    def generation_finished(self, mark: int, asked_model: bool, follow_up: WarmJob | None = None) -> None:
        """A generation that a completion started at `mark` ended. One that asked the model replaces the waiting
        place with `follow_up` (what it left to warm), unless a newer place came meanwhile: it has just made the
        model hold the place the user is at."""
        if follow_up is not None:
            self.counts.short_answers += 1
        if asked_model and mark == self._generation:
            self._waiting = follow_up
        self._resume_soon()

    def _resume_soon(self) -> None:
        if self._pending == 0 and self._waiting is not None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(self._idle_s, self._start)

    def close(self) -> None:
        """Stop warming for good."""
        self._waiting = None
        self._stop_running()
        if self._timer is not None:
            self._timer.cancel()

    def _stop_running(self) -> None:
        if self._running is not None:
            self._running.stop.set()

    def _start(self) -> None:
        self._timer = None
        if self._pending or self._running is not None or self._waiting is None:
            return
        running = self._running = _Running(self._waiting, threading.Event())
        loop = asyncio.get_running_loop()
        try:
            future = self._executor.submit(running.job.work, running.stop)
        except RuntimeError:  # the executor is shut down: the server is exiting
            self._running = None
            return

        def finished(future: Future[Warmed]) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is exiting
                loop.call_soon_threadsafe(self._finished, running, future)

        future.add_done_callback(finished)

    def _finished(self, running: _Running, future: Future[Warmed]) -> None:
        self._running = None
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            if error is not None:
                logger.warning("warming failed: %s", error)
            if self._waiting is running.job:
                self._waiting = None
            return
        warmed = future.result()
        self.counts.tokens += warmed.tokens
        if warmed.skipped:  # the backend has no cache to fill: nothing was done, nothing is counted
            if self._waiting is running.job:
                self._waiting = None
        elif warmed.done:
            self.counts.prefilled += 1
            if self._waiting is running.job:
                self._waiting = None
        else:
            self.counts.abandoned += 1
        self._start()
