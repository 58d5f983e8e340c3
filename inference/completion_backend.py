"""What a completion backend does, whatever serves it: given the prompt window, the mode and the stop rule, generate
text until the rule cuts it, a limit is reached, or the request is cancelled.

The engine (engine.py) keeps what every backend shares: serving the rest of a suggestion while it is typed, the
anchored window, the mode, the stop rule, trimming what repeats the suffix. A backend only generates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from cove.inference.prompt_window import PromptWindow
from cove.inference.stop_rules import CompletionMode, StopRule

#: Why a suggestion ended: the stop rule cut it, the model ended it, the token or time limit; "suggestion": the rest
#: of an earlier one that the user typed through; "partial": answered while its generation went on (typing on).
StopReason = Literal["rule", "end", "tokens", "time", "suggestion", "partial"]


@dataclass(frozen=True)
class ContextFile:
    """A piece of the workspace context from one file: the file's name as a prompt gives it, and the text."""

    name: str
    text: str


@dataclass(frozen=True)
class PromptContext:
    """The workspace context of a prompt, as text (commented blocks with their files' names, what a model without
    repository tokens reads) and as files (a FIM model's repository format, llama-server's `input_extra`)."""

    text: str
    files: tuple[ContextFile, ...] = ()


@dataclass(frozen=True)
class GenerationJob:
    """One generation: the window around the cursor, the workspace context to put before it, and the limits."""

    document: str
    window: PromptWindow
    mode: CompletionMode
    rule: StopRule
    max_new: int
    #: Seconds of generation, counted from the first generated token (prompt processing is not counted: a cold
    #: prompt must not cost the suggestion), after which generation stops ("time").
    budget_s: float
    context: str = ""
    #: The same context by file, for the repository format of FIM models (empty: `context` as one chunk).
    context_files: tuple[ContextFile, ...] = ()
    #: A short window without context that may answer at once when `window` would need a long prefill (a backend
    #: that keeps no cache of ours ignores it).
    first_window: PromptWindow | None = None

    def describe(self) -> str:
        """The prompt's parts as the backend gets them, for a person: the workspace context, the window's prefix up
        to the cursor (marked), the suffix (a backend without fill-in-the-middle leaves it out), the limits."""
        window = self.window
        return (
            f"--- {self.document}: {self.mode.value}, at most {self.max_new} tokens, window from line "
            f"{window.anchor_line + 1}\n"
            f"--- context ({len(self.context)} chars)\n{self.context}"
            f"--- prefix ({len(window.prefix)} chars)\n{window.prefix}<CURSOR>\n"
            f"--- suffix ({len(window.suffix)} chars; only fill-in-the-middle models and servers get it)\n"
            f"{window.suffix}\n--- end of prompt"
        )


@dataclass(frozen=True)
class Generated:
    """What a backend generated (already cut by the stop rule) and how."""

    text: str
    stop: StopReason
    prompt_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    drafted_tokens: int = 0
    #: Who generated it, when a backend chose among others (completion_routing.py).
    backend: str = ""
    #: It came from the job's short first window: the full window is still to be evaluated.
    short_window: bool = False


@dataclass(frozen=True)
class Warmed:
    """What warming a place did: tokens evaluated, and whether the whole window is now ready (False: stopped early,
    what was evaluated is kept)."""

    tokens: int
    done: bool
    #: Nothing was evaluated, nor can be: the backend keeps no cache of ours (an OpenAI-compatible server), or
    #: `reuse_kv_cache` is off. Warming drops the place without counting it as prefilled.
    skipped: bool = False


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
