"""What a completion backend does, whatever serves it: given the prompt window, the mode and the stop rule, generate
text until the rule cuts it, a limit is reached, or the request is cancelled.

The engine (engine.py) keeps what every backend shares: serving the rest of a suggestion while it is typed, the
anchored window, the mode, the stop rule, trimming what repeats the suffix. A backend only generates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cove.protocol.jobs import Generated, GenerationJob, Warmed


class CompletionBackend(Protocol):
    """A model that completes text: the local llama.cpp model or a server."""

    #: Short name for the status and stats: "local", "openai", ...
    name: str

    def describe(self) -> str:
        """One line for the user: which model, where."""
        ...

    def generate(
        self, job: GenerationJob, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None
    ) -> Generated:
        """Generate for `job`; raises Cancelled once `stop_requested()` is true, ModelError when it cannot."""
        ...

    def warm(self, job: GenerationJob, stop_requested: Callable[[], bool]) -> Warmed:
        """Evaluate `job`'s prompt ahead of the keystroke that will need it, in small chunks, stopping (and keeping
        what it evaluated) once `stop_requested()` is true; a backend without a cache of ours does nothing."""
        ...

    def forget(self, document: str) -> None:
        """Drop what is kept for a closed document."""
        ...

    def close(self) -> None:
        """Free the model or the connection."""
        ...


class ServerBackend(CompletionBackend, Protocol):
    """A completion backend on a server, which `cove doctor` can probe."""

    def probe(self) -> str:
        """Whether the server answers, what it serves, and how fast; ModelError if it does not."""
        ...
