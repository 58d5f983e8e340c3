"""The completion engine: from a document and a cursor to a suggestion, whichever backend generates it.

Fast paths shared by every backend, cheapest first: the rest of the document's last suggestion while the user types
it; a window anchored on a line so that a backend's cache of the prompt's prefix is reused from keystroke to
keystroke; that window evaluated ahead of the keystroke (`warm`) while the user is idle; a short first window, which
a backend with a cache of ours answers from at a cold place, the full window following (`extend`). The backend
(local_backend.py, a server through openai_completions.py, or a chain of them through completion_routing.py)
generates until the stop rule (line or block) cuts the text, a token or time limit, or a cancellation; what repeats
the text after the cursor is trimmed here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cove.config import CompletionConfig, CoveConfig
from cove.errors import Cancelled
from cove.inference.completion.completion_backend import CompletionBackend
from cove.inference.completion.completion_routing import RoutedCompletions, completion_backend
from cove.inference.completion.deferred_local import DeferredLocal
from cove.inference.completion.prompt_window import build_window
from cove.inference.completion.stop_rules import choose_mode, trim_suffix_overlap
from cove.protocol.jobs import (
    CompletionMode,
    Generated,
    GenerationJob,
    PromptContext,
    PromptWindow,
    StopReason,
    StopRule,
    Warmed,
)

if TYPE_CHECKING:
    from cove.inference.completion.local_backend import LocalBackend
    from cove.inference.model.local_model import LocalModel

logger = logging.getLogger(__name__)

#: Documents whose anchor and last suggestion are remembered.
MAX_DOCUMENTS = 128

__all__ = ["Completion", "CompletionEngine", "CompletionRequest", "StopReason", "WritingRequest"]


#: The workspace context of a window, given the window's anchor line: text, or text and files (PromptContext).
WindowContext = Callable[[int], str | PromptContext]


@dataclass(frozen=True)
class CompletionRequest:
    """A document's text and the cursor's character offset in it."""

    document: str
    text: str
    offset: int
    #: Workspace context placed before the document's window, given the window's anchor line (see
    #: server/context/workspace_context.py); it must stay stable from keystroke to keystroke, or the KV cache is lost.
    context: WindowContext | None = None


@dataclass(frozen=True)
class Completion:
    """A suggestion and how it was made (`backend`: who generated it; "" when the last suggestion served)."""

    text: str
    mode: CompletionMode
    stop: StopReason
    prompt_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    drafted_tokens: int = 0
    seconds: float = 0.0
    backend: str = ""
    #: It came from the short first window at a cold place; the full window is yet to be evaluated (`warm`).
    short_window: bool = False


@dataclass(frozen=True)
class WritingRequest:
    """Text the model writes for a local action (a docstring's summary, a test, a commit message): what comes before
    and after it, context to put first, where it ends, and how long it may be. It is not a suggestion at a cursor:
    no window is cut, nothing is remembered for the keystrokes that follow."""

    #: The key the backend keeps this prompt's KV state under (one per action and document: steps that extend the
    #: same prompt reuse it).
    document: str
    prefix: str
    suffix: str = ""
    context: str = ""
    stop_at: tuple[str, ...] = ("\n",)
    max_tokens: int = 48
    #: Seconds of generation, from the first generated token.
    budget_s: float = 5.0


@dataclass
class _DocumentMemo:
    anchor: int | None = None
    first_anchor: int | None = None
    #: The suggestion came from the short first window.
    short: bool = False
    before: str = ""
    line_suffix: str = ""
    suggestion: str = ""


class CompletionEngine:
    """Completions from a backend (by default the local model); `complete` blocks and is thread-safe."""

    def __init__(
        self,
        model: LocalModel | Callable[[], LocalModel],
        config: CompletionConfig,
        backend: CompletionBackend | None = None,
    ) -> None:
        """`model`: the local model, or a function that loads it on first use (when another target serves: the
        model runtime is then not even imported before)."""
        if callable(model):
            self.local: LocalBackend | DeferredLocal = DeferredLocal(model, config)
        else:
            from cove.inference.completion.local_backend import LocalBackend

            self.local = LocalBackend(model, config)
        self.backend: CompletionBackend = backend or self.local
        self._config = config
        self._memos: OrderedDict[str, _DocumentMemo] = OrderedDict()
        self._memo_lock = threading.Lock()

    @property
    def config(self) -> CompletionConfig:
        return self._config

    @config.setter
    def config(self, config: CompletionConfig) -> None:
        self._config = config
        self.local.config = config

    def reroute(self, config: CoveConfig) -> None:
        """Apply `config`'s completion settings and `[routing] complete` (with `[remote]`): the local model stays
        loaded; a server backend is built afresh."""
        self.config = config.completion
        with self._memo_lock:  # suggestions made under the old settings are not served under the new
            for memo in self._memos.values():
                memo.suggestion = ""
        previous, self.backend = self.backend, completion_backend(config, self.local)
        if isinstance(previous, RoutedCompletions):
            for target in previous.targets:
                if target is not self.local:
                    target.close()

    def describe(self) -> str:
        """Who serves completions, for the user."""
        return self.backend.describe()

    def close(self) -> None:
        """Free the model and any server connection."""
        if self.backend is not self.local:
            self.backend.close()
        else:
            self.local.close()

    @property
    def saved_state_bytes(self) -> int:
        """Bytes held by the local model's KV states of documents other than the current one."""
        return self.local.saved_state_bytes

    def forget(self, document: str) -> None:
        """Drop what is kept for a closed document."""
        with self._memo_lock:
            self._memos.pop(document, None)
        self.backend.forget(document)
        if self.backend is not self.local:
            self.local.forget(document)

    def complete(
        self,
        request: CompletionRequest,
        cancel: threading.Event | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Completion:
        """A suggestion for the cursor of `request`; raises Cancelled once `cancel` is set.

        `on_text` receives the suggestion so far while it is generated.
        """
        started = time.perf_counter()
        memo = self._memo(request.document)
        config = self.config
        window = self._window(request, memo)
        mode = choose_mode(window.line_prefix, window.line_suffix, config.multiline)
        before = request.text[: request.offset]
        rest = self._rest_of_suggestion(memo, before, window) if config.reuse_suggestions else None
        if rest is not None:
            return Completion(rest, mode, "suggestion", seconds=time.perf_counter() - started)
        return self._ask_backend(request, memo, window, mode, cancel, on_text, started)

    def prompt(self, request: CompletionRequest) -> GenerationJob:
        """What the backend would be asked for at `request`'s cursor now (`GenerationJob.describe` shows it)."""
        memo = self._memo(request.document)
        window = self._window(request, memo)
        return self._job(
            request, memo, window, choose_mode(window.line_prefix, window.line_suffix, self.config.multiline)
        )

    def write(self, request: WritingRequest, cancel: threading.Event | None = None) -> Generated:
        """The text the model writes for `request` (cut before its first stop string); raises Cancelled once
        `cancel` is set."""
        line_prefix = request.prefix[request.prefix.rfind("\n") + 1 :]
        line_suffix = request.suffix.split("\n", 1)[0]
        window = PromptWindow(request.prefix, request.suffix, 0, line_prefix, line_suffix)
        rule = StopRule(CompletionMode.TEXT, line_prefix, line_suffix, 0, request.stop_at)
        job = GenerationJob(
            request.document, window, CompletionMode.TEXT, rule, request.max_tokens, request.budget_s, request.context
        )
        return self.backend.generate(job, cancel.is_set if cancel is not None else _never, None)

    def extend(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Warmed:
        """After a short answer at `request`'s cursor: evaluate the full window (`warm`), then answer the same cursor
        again from it, so that the keystrokes typing through the suggestion are served the full window's answer."""
        warmed = self.warm(request, cancel)
        memo = self._memo(request.document)
        if not warmed.done or not memo.short or memo.before != request.text[: request.offset]:
            return warmed
        window = self._window(request, memo)
        mode = choose_mode(window.line_prefix, window.line_suffix, self.config.multiline)
        with contextlib.suppress(Cancelled):  # one try: the full window, which matters most, is ready either way
            self._ask_backend(request, memo, window, mode, cancel, None, time.perf_counter())
        return warmed

    def _ask_backend(
        self,
        request: CompletionRequest,
        memo: _DocumentMemo,
        window: PromptWindow,
        mode: CompletionMode,
        cancel: threading.Event | None,
        on_text: Callable[[str], None] | None,
        started: float,
    ) -> Completion:
        """Generate at the request's cursor and remember the suggestion for the keystrokes that type it."""
        job = self._job(request, memo, window, mode)
        stop_requested = cancel.is_set if cancel is not None else _never
        generated = self.backend.generate(job, stop_requested, on_text)
        text = trim_suffix_overlap(generated.text, window.line_suffix, window.suffix)
        memo.anchor = window.anchor_line
        before = request.text[: request.offset]
        memo.before, memo.line_suffix, memo.suggestion = before, window.line_suffix, text
        memo.short = generated.short_window
        return Completion(
            text,
            mode,
            generated.stop,
            prompt_tokens=generated.prompt_tokens,
            reused_tokens=generated.reused_tokens,
            generated_tokens=generated.generated_tokens,
            drafted_tokens=generated.drafted_tokens,
            seconds=time.perf_counter() - started,
            backend=generated.backend or self.backend.name,
            short_window=generated.short_window,
        )

    def warm(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Warmed:
        """Evaluate the prompt the next completion at `request`'s cursor will use (the same anchored window, the
        same workspace context) while the user is idle; stops, keeping what it evaluated, once `cancel` is set."""
        if not self.config.reuse_kv_cache:
            return Warmed(0, False, skipped=True)
        memo = self._memo(request.document)
        window = self._window(request, memo)
        memo.anchor = window.anchor_line  # the next completion here keeps this window's start
        mode = choose_mode(window.line_prefix, window.line_suffix, self.config.multiline)
        job = self._job(request, memo, window, mode)
        return self.backend.warm(job, cancel.is_set if cancel is not None else _never)

    def _window(self, request: CompletionRequest, memo: _DocumentMemo) -> PromptWindow:
        """The prompt window at the request's cursor, anchored where the document's last window started."""
        config = self.config
        return build_window(
            request.text,
            request.offset,
            memo.anchor if config.reuse_kv_cache else None,
            config.max_prefix_chars,
            config.max_suffix_chars,
        )

    def _job(
        self, request: CompletionRequest, memo: _DocumentMemo, window: PromptWindow, mode: CompletionMode
    ) -> GenerationJob:
        """What the backend is asked to generate for `window`: limits by mode, the workspace context by anchor,
        and the short first window for a cold place."""
        config = self.config
        block = mode is CompletionMode.BLOCK
        budget_ms = config.block_time_budget_ms if block else config.time_budget_ms
        found = request.context(window.anchor_line) if request.context is not None else ""
        context = found if isinstance(found, PromptContext) else PromptContext(found)
        job = GenerationJob(
            document=request.document,
            window=window,
            mode=mode,
            rule=StopRule(mode, window.line_prefix, window.line_suffix, config.max_block_lines),
            max_new=config.max_block_tokens if block else config.max_tokens,
            budget_s=budget_ms / 1000,
            context=context.text,
            context_files=context.files,
            first_window=self._first_window(request, memo, window, context.text),
        )
        if logger.isEnabledFor(logging.DEBUG):  # `cove lsp --log-level debug`: the prompt of every request
            logger.debug("prompt\n%s", job.describe())
        return job

    def _first_window(
        self, request: CompletionRequest, memo: _DocumentMemo, window: PromptWindow, context: str
    ) -> PromptWindow | None:
        """The short window (anchored on its own, without context) that answers at once where the full one is
        cold; None when turned off or when it would be no shorter."""
        config = self.config
        if not config.first_window_chars or not config.reuse_kv_cache:
            return None
        first = build_window(
            request.text, request.offset, memo.first_anchor, config.first_window_chars, config.max_suffix_chars
        )
        memo.first_anchor = first.anchor_line
        return first if context or len(first.prefix) < len(window.prefix) else None

    def _memo(self, document: str) -> _DocumentMemo:
        with self._memo_lock:
            memo = self._memos.pop(document, None) or _DocumentMemo()
            self._memos[document] = memo
            while len(self._memos) > MAX_DOCUMENTS:
                self._memos.popitem(last=False)
        return memo

    @staticmethod
    def _rest_of_suggestion(memo: _DocumentMemo, before: str, window: PromptWindow) -> str | None:
        """What is left of the last suggestion if the user has typed a part of it and nothing else."""
        if not memo.suggestion or window.line_suffix != memo.line_suffix or not before.startswith(memo.before):
            return None
        typed = before[len(memo.before) :]
        if len(typed) < len(memo.suggestion) and memo.suggestion.startswith(typed):
            return memo.suggestion[len(typed) :]
        return None


def _never() -> bool:
    return False
