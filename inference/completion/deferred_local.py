"""The local backend of an engine whose completions another target serves first (the daemon, a server): the model
runtime (llama.cpp, numpy) is imported, and the model loaded, only when this fallback is first asked, so that a
language server whose model lives in the daemon holds no copy of either (a window costs what its Python costs)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cove.config import CompletionConfig
from cove.protocol.jobs import Generated, GenerationJob, Warmed

if TYPE_CHECKING:
    from cove.inference.completion.local_backend import LocalBackend
    from cove.inference.model.local_model import LocalModel


class DeferredLocal:
    """A `LocalBackend` built on first use from `load`; until then nothing of the model runtime is imported."""

    name = "local"

    def __init__(self, load: Callable[[], LocalModel], config: CompletionConfig) -> None:
        self._load = load
        self._config = config
        self._backend: LocalBackend | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> LocalBackend | None:
        """The backend if it was built (nothing is imported or loaded here)."""
        return self._backend

    @property
    def backend(self) -> LocalBackend:
        """The backend, built now (importing the model runtime) if it was not; its model loads on first use."""
        with self._lock:
            if self._backend is None:
                from cove.inference.completion.local_backend import LocalBackend

                self._backend = LocalBackend(self._load, self._config)
            return self._backend

    @property
    def config(self) -> CompletionConfig:
        return self._config

    @config.setter
    def config(self, config: CompletionConfig) -> None:
        self._config = config
        if self._backend is not None:
            self._backend.config = config

    @property
    def saved_state_bytes(self) -> int:
        return self._backend.saved_state_bytes if self._backend is not None else 0

    def describe(self) -> str:
        return self.backend.describe() if self._backend is not None else "the local model (loaded on first use)"

    def generate(
        self, job: GenerationJob, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None = None
    ) -> Generated:
        return self.backend.generate(job, stop_requested, on_text)

    def warm(self, job: GenerationJob, stop_requested: Callable[[], bool]) -> Warmed:
        return self.backend.warm(job, stop_requested)

    def forget(self, document: str) -> None:
        if self._backend is not None:
            self._backend.forget(document)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
