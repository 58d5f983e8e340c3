"""One local model for every client of the daemon: the completions of every editor window and the agent's steps.

The model is loaded once, on first use, and unloaded after `[model] idle_unload_s` without use. Its one context is
taken in turns (`Turns`): completions first, then the agent, then warm-ups. An agent step that is generating when a
completion arrives pauses between two tokens: its KV state is saved, the completion runs (its document's KV state
restored as usual), and the step resumes from the state put back. A warm-up gives way to anyone who waits.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from cove.config import CoveConfig
from cove.inference.chat.chat_model import ChatReply
from cove.inference.chat.local_chat import LocalChat
from cove.inference.completion.local_backend import LocalBackend
from cove.inference.model.kv_memory import kv_bytes
from cove.inference.model.local_model import LocalModel, open_local_model, release_freed_memory
from cove.protocol.jobs import Generated, GenerationJob, Warmed

logger = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    """Who may use the model, most urgent first."""

    COMPLETION = 0
    AGENT = 1
    WARM = 2


class Turns:
    """The model's context, taken one user at a time: the most urgent kind of use first, and in the order of arrival
    within a kind (so one editor's burst cannot starve another's: each window waits with one request at most, and
    they are served in turn). The holder may `pause` to let more urgent ones go first; it then goes first among its
    kind."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._queues: list[collections.deque[object]] = [collections.deque() for _ in Priority]

    def _free_for(self, turn: Priority, ticket: object) -> bool:
        return not self._busy and not any(self._queues[: turn.value]) and self._queues[turn][0] is ticket

    def _wait(self, turn: Priority, first: bool = False) -> None:
        ticket = object()
        queue = self._queues[turn]
        queue.appendleft(ticket) if first else queue.append(ticket)
        try:
            self._cond.wait_for(lambda: self._free_for(turn, ticket))
        finally:
            queue.remove(ticket)
            self._cond.notify_all()  # the next in line may be free now
        self._busy = True

    @contextlib.contextmanager
    def take(self, turn: Priority) -> Iterator[None]:
        with self._cond:
            self._wait(turn)
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def busy(self) -> bool:
        """Whether someone holds the context or waits for it."""
        with self._cond:
            return self._busy or any(self._queues)

    def queued(self, turn: Priority) -> int:
        """How many wait for a turn of this kind."""
        with self._cond:
            return len(self._queues[turn])

    def waiting(self, before: Priority) -> bool:
        """Whether someone more urgent than `before` waits."""
        with self._cond:
            return any(self._queues[: before.value])

    def pause(self, turn: Priority) -> None:
        """The holder (of `turn`) lets everyone more urgent go first, and has the context again after them."""
        with self._cond:
            self._busy = False
            self._cond.notify_all()
            self._wait(turn, first=True)


class ResidentModel:
    """The daemon's one local model: completions (`generate`, `warm`, `forget`) and the agent's chat (`chat`)."""

    name = "resident"

    def __init__(
        self,
        config: CoveConfig,
        load: Callable[[], LocalModel] | None = None,
        chat_tokens: int = 512,
        before_load: Callable[[], None] | None = None,
    ) -> None:
        """`before_load`: called in the loading thread before each load (the host makes room for the model)."""
        self.model_config = config.model
        self.turns = Turns()
        self.loads = 0
        self._load_model = load or (lambda: open_local_model(config.model))
        self._before_load = before_load
        #: `time.monotonic()` of the last request that asked for this model (the host's least recently used).
        self.asked_at = time.monotonic()
        self.backend = LocalBackend(self._load, config.completion)
        self.idle_unload_s = config.model.idle_unload_s
        #: Tokens of one agent reply at most.
        self.chat_tokens = chat_tokens
        #: Seconds the last completion waited for its turn (an agent step's chunk or token to end, its KV state saved).
        self.last_wait_s = 0.0
        #: Completions served while an agent step was paused, over the daemon's life.
        self.preemptions = 0
        #: Places where an agent step could pause (its prompt's chunks, its reply's tokens), over the daemon's life.
        self.pause_points = 0

    def _load(self) -> LocalModel:
        if self._before_load is not None:
            self._before_load()
        started = time.perf_counter()
        model = self._load_model()
        self.loads += 1
        logger.info(
            "loaded the local model %s in %.1f s (load %d)", model.path, time.perf_counter() - started, self.loads
        )
        return model

    @property
    def loaded(self) -> bool:
        return self.backend.loaded

    @property
    def path_hint(self) -> str:
        """The model's file as configured ("the default model" when `model.path` is empty)."""
        return self.model_config.path or "the default model"

    @property
    def busy(self) -> bool:
        """Whether someone uses the model or waits for it."""
        return self.turns.busy()

    def memory_bytes(self) -> int:
        """What the model holds, as estimated: its weights (the file's size), its context's KV cache at `n_ctx`, and
        the documents' saved KV states; 0 when it is not loaded."""
        model = self.backend.loaded_model
        if model is None:
            return 0
        config = self.model_config
        cache = kv_bytes(model.kv_shape, config.n_ctx, config.kv_type, config.swa_full, config.n_batch)
        return model.file_bytes + cache + self.backend.saved_state_bytes

    def describe(self) -> str:
        return self.backend.describe()

    def load(self) -> bool:
        """Load the model now, if it is not; whether it was loaded now."""
        with self.turns.take(Priority.COMPLETION), self._in_use():
            loaded_now = not self.backend.loaded
            self.backend.model  # noqa: B018 (loads it)
            return loaded_now

    def generate(
        self, job: GenerationJob, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None = None
    ) -> Generated:
        asked = time.perf_counter()
        with self.turns.take(Priority.COMPLETION), self._in_use():
            self.last_wait_s = time.perf_counter() - asked
            return self.backend.generate(job, stop_requested, on_text)

    def warm(self, job: GenerationJob, stop_requested: Callable[[], bool]) -> Warmed:
        """Warm only while nobody waits for the model; stopped (keeping what it evaluated) once someone does."""
        with self.turns.take(Priority.WARM), self._in_use():
            return self.backend.warm(job, lambda: stop_requested() or self.turns.waiting(Priority.WARM))

    def forget(self, document: str) -> None:
        self.backend.forget(document)

    def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        """One agent step on the shared model; it pauses between tokens while completions wait."""
        with self.turns.take(Priority.AGENT):
            self.backend.park()
            with self._in_use(), _trimmed():
                return LocalChat(self.backend.model, self.chat_tokens, self._between_tokens).chat(
                    messages, tools, on_text
                )

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[None]:
        """Idle time counts from the end of a use (a first one that loads the model takes a while)."""
        try:
            yield
        finally:
            self.backend.last_used = time.monotonic()

    def _between_tokens(self) -> None:
        self.pause_points += 1
        if not self.turns.waiting(Priority.AGENT):
            return
        model = self.backend.model
        with model.lend_context():
            self.turns.pause(Priority.AGENT)  # completions run now
            self.backend.park()
        self.preemptions += 1

    def unload(self) -> bool:
        """Free the model now (after whoever uses it); whether it was loaded."""
        with self.turns.take(Priority.WARM):
            freed = self.backend.unload()
            release_freed_memory()
        return freed

    def unload_if_idle(self) -> bool:
        """Free the model when it has not been used for `idle_unload_s` (0: never); whether it was freed."""
        if not self.idle_unload_s or not self.loaded:
            return False
        if time.monotonic() - self.backend.last_used < self.idle_unload_s:
            return False
        with self.turns.take(Priority.WARM):
            if time.monotonic() - self.backend.last_used < self.idle_unload_s:
                return False
            freed = self.backend.unload()
            release_freed_memory()
        if freed:
            logger.info("unloaded the local model after %d s without use", self.idle_unload_s)
        return freed

    def close(self) -> None:
        with self.turns.take(Priority.COMPLETION):
            self.backend.close()


@contextlib.contextmanager
def _trimmed() -> Iterator[None]:
    try:
        yield
    finally:
        release_freed_memory()
