"""The completion engine: from a document and a cursor to a suggestion from the local model.

Fast paths, cheapest first: the rest of the document's last suggestion while the user types it; the model's KV cache
of the anchored prompt prefix (kept per document, so switching files keeps it); prompt-lookup drafts verified in one
batch. Generation stops by rule (line or block), by token and time limits, or when the request is cancelled.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from cove.config import CompletionConfig
from cove.errors import Cancelled
from cove.inference.document_states import KvStateCache, SavedSequence
from cove.inference.local_model import LocalModel
from cove.inference.prompt_lookup import draft_tokens
from cove.inference.prompt_window import PromptWindow, build_window
from cove.inference.stop_rules import CompletionMode, StopRule, choose_mode, trim_suffix_overlap

#: Documents whose anchor and last suggestion are remembered.
MAX_DOCUMENTS = 128

StopReason = Literal["rule", "end", "tokens", "time", "suggestion"]


@dataclass(frozen=True)
class CompletionRequest:
    """A document's text and the cursor's character offset in it."""

    document: str
    text: str
    offset: int
    #: Workspace context placed before the document's window, given the window's anchor line (see
    #: server/workspace_context.py); it must stay stable from keystroke to keystroke, or the KV cache is lost.
    context: Callable[[int], str] | None = None


@dataclass(frozen=True)
class Completion:
    """A suggestion and how it was made."""

    text: str
    mode: CompletionMode
    stop: StopReason
    prompt_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    drafted_tokens: int = 0
    seconds: float = 0.0


@dataclass
class _DocumentMemo:
    anchor: int | None = None
    before: str = ""
    line_suffix: str = ""
    suggestion: str = ""


class CompletionEngine:
    """Completions from one local model; `complete` blocks and is safe to call from several threads."""

    def __init__(self, model: LocalModel, config: CompletionConfig) -> None:
        self.model = model
        self.config = config
        self._lock = threading.Lock()
        self._current: str | None = None
        self._saved = KvStateCache(config.kv_cache_mib << 20)
        self._memos: OrderedDict[str, _DocumentMemo] = OrderedDict()

    @property
    def saved_state_bytes(self) -> int:
        """Bytes held by the KV states of documents other than the current one."""
        return self._saved.bytes_held

    def forget(self, document: str) -> None:
        """Drop what is kept for a closed document."""
        with self._lock:
            self._memos.pop(document, None)
            self._saved.drop(document)
            if self._current == document:
                self._current = None
                self.model.clear()

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
        window = build_window(
            request.text,
            request.offset,
            memo.anchor if config.reuse_kv_cache else None,
            config.max_prefix_chars,
            config.max_suffix_chars,
        )
        mode = choose_mode(window.line_prefix, window.line_suffix, config.multiline)
        before = request.text[: request.offset]
        rest = self._rest_of_suggestion(memo, before, window) if config.reuse_suggestions else None
        if rest is not None:
            return Completion(rest, mode, "suggestion", seconds=time.perf_counter() - started)
        stop_requested = cancel.is_set if cancel is not None else _never
        with self._lock:
            if stop_requested():
                raise Cancelled("completion superseded before it started")
            context = request.context(window.anchor_line) if request.context is not None else ""
            completion = self._run_model(request.document, window, mode, stop_requested, on_text, started, context)
        memo.anchor = window.anchor_line
        memo.before, memo.line_suffix, memo.suggestion = before, window.line_suffix, completion.text
        return completion

    def _memo(self, document: str) -> _DocumentMemo:
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

    def _switch_to(self, document: str) -> None:
        """Make the model's context hold the document's tokens, saving those of the document it leaves."""
        if not self.config.reuse_kv_cache:
            self.model.clear()
            return
        if self._current == document:
            return
        if self._current is not None and self.model.tokens:
            self._saved.put(self._current, SavedSequence(tuple(self.model.tokens), self.model.save_state()))
        saved = self._saved.take(document)
        if saved is None:
            self.model.clear()
        else:
            self.model.restore_state(saved.tokens, saved.state)
        self._current = document

    def _prompt(self, window: PromptWindow, max_new: int, context: str = "") -> tuple[list[int], bytes]:
        """Prompt tokens, and the bytes of the prompt's last token when it is held back for token healing.

        A prefix that ends mid-word ends on a token the model rarely sees there ("option_s"); holding that token
        back and making the first generated token start with its bytes lets the model pick the natural one.
        """
        model = self.model
        fim = model.fim
        tokens = model.tokenize(window.prefix)
        heal = b""
        if fim is None:
            head = [model.bos]
            tail: list[int] = []
            if tokens:
                heal = model.piece(tokens.pop())
        else:
            head = [model.bos, fim.prefix]
            tail = [fim.suffix, *model.tokenize(window.suffix), fim.middle]
        room = model.n_ctx - max_new - len(head) - len(tail) - 1
        if room < len(tokens):
            tokens = tokens[len(tokens) - room :]
        extra = model.tokenize(context) if context else []
        extra = extra[: max(0, room - len(tokens))]  # the context gives way first
        return head + extra + tokens + tail, heal

    def _run_model(
        self,
        document: str,
        window: PromptWindow,
        mode: CompletionMode,
        stop_requested: Callable[[], bool],
        on_text: Callable[[str], None] | None,
        started: float,
        context: str = "",
    ) -> Completion:
        config = self.config
        block = mode is CompletionMode.BLOCK
        max_new = config.max_block_tokens if block else config.max_tokens
        budget_ms = config.block_time_budget_ms if block else config.time_budget_ms
        self._switch_to(document)
        prompt, heal = self._prompt(window, max_new, context)
        reused = self.model.prefill(prompt, stop_requested)
        rule = StopRule(mode, window.line_prefix, window.line_suffix, config.max_block_lines)
        healing = self.model.tokens_starting_with(heal) if heal else None
        deadline = time.perf_counter() + budget_ms / 1000
        text, stop, generated, drafted = self._generate(
            prompt, heal, healing, rule, max_new, deadline, stop_requested, on_text
        )
        text = trim_suffix_overlap(text, window.line_suffix, window.suffix)
        return Completion(
            text,
            mode,
            stop,
            prompt_tokens=len(prompt),
            reused_tokens=reused,
            generated_tokens=generated,
            drafted_tokens=drafted,
            seconds=time.perf_counter() - started,
        )

    def _generate(
        self,
        prompt: list[int],
        heal: bytes,
        healing: npt.NDArray[np.int64] | None,
        rule: StopRule,
        max_new: int,
        deadline: float,
        stop_requested: Callable[[], bool],
        on_text: Callable[[str], None] | None,
    ) -> tuple[str, StopReason, int, int]:
        """Greedy decoding with verified drafts; returns the kept text, why it stopped, tokens made and drafted."""
        model = self.model
        generated: list[int] = []
        raw = bytearray()
        accepted_total = 0
        first = model.greedy() if healing is None or not len(healing) else model.greedy_among(healing)
        # Tokens the model chose that are not yet checked; the last of them is not yet in the context.
        pending = [first]
        text = ""
        while True:
            for chosen in pending:
                if model.is_end(chosen):
                    return rule.finish(text, ended=True), "end", len(generated), accepted_total
                generated.append(chosen)
                raw += model.piece(chosen)
                text = raw[len(heal) :].decode("utf-8", errors="ignore")
                cut = rule.cut(text)
                if cut is not None:
                    return cut, "rule", len(generated), accepted_total
            if on_text is not None:
                on_text(text)
            if len(generated) >= max_new:
                return rule.finish(text, ended=False), "tokens", len(generated), accepted_total
            if time.perf_counter() > deadline:
                return rule.finish(text, ended=False), "time", len(generated), accepted_total
            if stop_requested():
                raise Cancelled("completion cancelled during generation")
            room = min(self.config.draft_tokens, max_new - len(generated), model.n_batch - 1)
            draft = draft_tokens(prompt + generated, max_draft=room) if room > 0 else []
            model.decode([pending[-1], *draft], all_logits=bool(draft))
            accepted = 0
            for index, drafted in enumerate(draft):
                if model.greedy(index) != drafted:
                    break
                accepted += 1
            bonus = model.greedy(accepted)
            model.truncate(len(model.tokens) - (len(draft) - accepted))
            accepted_total += accepted
            pending = [*draft[:accepted], bonus]


def _never() -> bool:
    return False
