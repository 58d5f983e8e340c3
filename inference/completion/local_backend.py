"""The local backend: the in-process llama.cpp model, its KV cache kept per document (switching files keeps it),
the anchored prompt's prefix reused, prompt-lookup drafts verified in one batch, token healing at a mid-word cursor.

At a cold place (most of the full window still to evaluate) the job's short first window answers instead: its KV
state is kept apart from the full window's (each saved while the other is in the context), so the full window,
evaluated in the background by `warm`, loses nothing to the quick answers given meanwhile.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import numpy as np
import numpy.typing as npt

from cove.config import CompletionConfig
from cove.errors import Cancelled
from cove.inference.completion.fim import choose_order, fim_prompt, repository_part
from cove.inference.completion.prompt_lookup import draft_tokens
from cove.inference.model.document_states import KvStateCache, SavedSequence
from cove.inference.model.local_model import LocalModel, common_prefix_length
from cove.languages import language_of
from cove.protocol.jobs import ContextFile, Generated, GenerationJob, PromptWindow, StopReason, StopRule, Warmed

#: Tokens a warm evaluates between checks of its stop flag: a completion that arrives waits at most this long.
WARM_CHUNK_TOKENS = 16
#: Prompt tokens left to evaluate above which the full window is cold and the short first window answers instead.
COLD_TOKENS = 64


class LocalBackend:
    """Completions from one local model; `generate` blocks and is safe to call from several threads.

    `model` is the loaded model, or a function that loads it: then it is loaded on first use (a language server whose
    completions come from the daemon loads its own copy only when the daemon fails), and `unload` frees it until the
    next use.
    """

    name = "local"

    def __init__(self, model: LocalModel | Callable[[], LocalModel], config: CompletionConfig) -> None:
        self._model: LocalModel | None = model if isinstance(model, LocalModel) else None
        self._loader: Callable[[], LocalModel] | None = None if isinstance(model, LocalModel) else model
        self.config = config
        self._lock = threading.RLock()
        #: `time.monotonic()` of the last generation or warm (for unloading after a while without use).
        self.last_used = time.monotonic()
        self._current: str | None = None
        self._saved = KvStateCache(config.kv_cache_mib << 20)
        #: The current document's short first window, kept while the full window is in the context.
        self._short: SavedSequence | None = None
        #: The full window as last saved for a short answer: saved again only once the context has changed.
        self._full: SavedSequence | None = None

    @property
    def model(self) -> LocalModel:
        """The model, loaded now if it was not."""
        if self._model is None:
            assert self._loader is not None
            with self._lock:
                if self._model is None:
                    self._model = self._loader()
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def loaded_model(self) -> LocalModel | None:
        """The model if it is loaded (never loads it)."""
        return self._model

    def describe(self) -> str:
        model = self._model  # read once: another thread may unload it meanwhile
        if model is None:
            return "the local model (loaded on first use)"
        return f"the local model ({model.description})"

    def unload(self) -> bool:
        """Free the model and every KV state kept (a function to load it again must have been given); whether a
        model was loaded."""
        assert self._loader is not None, "a model given loaded cannot be loaded again"
        with self._lock:
            if self._model is None:
                return False
            model, self._model = self._model, None
            model.close()
            self._saved = KvStateCache(self.config.kv_cache_mib << 20)
            self._current = None
            self._short = self._full = None
            return True

    def park(self) -> None:
        """Save the current document's KV state with the others and empty the context, for another user of the
        same model (the agent) to have it; the document's next completion restores it."""
        with self._lock:
            if self._model is None:
                return
            if self._current is not None and self._model.tokens and self.config.reuse_kv_cache:
                self._saved.put(self._current, SavedSequence(tuple(self._model.tokens), self._model.save_state()))
            self._current = None
            self._short = self._full = None
            self._model.clear()

    @property
    def saved_state_bytes(self) -> int:
        """Bytes held by the KV states of documents other than the current one."""
        return self._saved.bytes_held

    def forget(self, document: str) -> None:
        with self._lock:
            self._saved.drop(document)
            if self._current == document:
                self._current = None
                self._short = self._full = None
                self.model.clear()

    def close(self) -> None:
        if self._model is not None:
            self._model.close()

    def generate(
        self, job: GenerationJob, stop_requested: Callable[[], bool], on_text: Callable[[str], None] | None
    ) -> Generated:
        with self._lock:
            self.last_used = time.monotonic()
            if stop_requested():
                raise Cancelled("completion superseded before it started")
            self._switch_to(job.document)
            prompt, heal = self._prompt(job.window, job.max_new, job.context, job.document, job.context_files)
            language = language_of(job.document)
            prompt = list(self.model.fit(prompt, language))
            short = self._short_prompt(job, prompt)
            if short is None:
                return self._answer(prompt, heal, job, stop_requested, on_text, language)
            with self._in_short_window():
                return self._answer(*short, job, stop_requested, on_text, language, short_window=True)

    def _answer(
        self,
        prompt: list[int],
        heal: bytes,
        job: GenerationJob,
        stop_requested: Callable[[], bool],
        on_text: Callable[[str], None] | None,
        language: str | None,
        short_window: bool = False,
    ) -> Generated:
        """Prefill `prompt` (reusing what the context holds) and generate; `language` ranks what a generation past the
        context drops, with `overflow = "structure"`."""
        reused = self.model.prefill(prompt, stop_requested, language)
        healing = self.model.tokens_starting_with(heal) if heal else None
        deadline = time.perf_counter() + job.budget_s
        text, stop, generated, drafted = self._generate(
            prompt, heal, healing, job.rule, job.max_new, deadline, stop_requested, on_text
        )
        return Generated(text, stop, len(prompt), reused, generated, drafted, short_window=short_window)

    def warm(self, job: GenerationJob, stop_requested: Callable[[], bool]) -> Warmed:
        """Make the model's context hold `job`'s prompt (but the token healing holds back), a chunk at a time."""
        with self._lock:
            self.last_used = time.monotonic()
            if not self.config.reuse_kv_cache:
                return Warmed(0, False, skipped=True)
            if stop_requested():
                return Warmed(0, False)
            self._switch_to(job.document)
            prompt, _ = self._prompt(job.window, job.max_new, job.context, job.document, job.context_files)
            language = language_of(job.document)
            prompt = list(self.model.fit(prompt, language))
            evaluated = 0
            short = self._short_prompt(job, prompt)
            if short is not None and _left(self._short.tokens if self._short else (), short[0]):
                with self._in_short_window():  # a keystroke soon answers from it: ready it first
                    evaluated += self.model.warm(short[0], stop_requested, WARM_CHUNK_TOKENS, language)
            evaluated += self.model.warm(prompt, stop_requested, WARM_CHUNK_TOKENS, language)
            return Warmed(evaluated, self.model.tokens[: len(prompt)] == prompt)

    def _short_prompt(self, job: GenerationJob, prompt: list[int]) -> tuple[list[int], bytes] | None:
        """The short first window's prompt (and healed bytes) when it answers much sooner: the full `prompt` has
        more than COLD_TOKENS left to evaluate, and the short one less than half as many (it sees less, so it must
        be worth it). Every keystroke is answered from it until the full window, evaluated in the background
        between keystrokes (`warm`), is ready: no keystroke waits for the full window's prefill."""
        if job.first_window is None:
            return None
        full_left = _left(self.model.tokens, prompt)
        if full_left <= COLD_TOKENS:
            return None
        short, heal = self._prompt(job.first_window, job.max_new, "", job.document)
        return (short, heal) if 2 * _left(self._short.tokens if self._short else (), short) < full_left else None

    @contextlib.contextmanager
    def _in_short_window(self) -> Iterator[None]:
        """Inside, the context holds the short window's tokens; the full window's come back after, whatever
        happened (a cancelled prefill keeps what it evaluated in either)."""
        full = self._full
        if full is None or full.tokens != tuple(self.model.tokens):
            full = self._full = self._snapshot()
        self._load(self._short)
        try:
            yield
        finally:
            self._short = self._snapshot()
            self._load(full)

    def _snapshot(self) -> SavedSequence | None:
        model = self.model
        return SavedSequence(tuple(model.tokens), model.save_state()) if model.tokens else None

    def _load(self, saved: SavedSequence | None) -> None:
        if saved is None:
            self.model.clear()
        else:
            self.model.restore_state(saved.tokens, saved.state)

    def _switch_to(self, document: str) -> None:
        """Make the model's context hold the document's tokens, saving those of the document it leaves."""
        if not self.config.reuse_kv_cache:
            self.model.clear()
            return
        if self._current == document:
            return
        if self._current is not None and self.model.tokens:
            self._saved.put(self._current, SavedSequence(tuple(self.model.tokens), self.model.save_state()))
        self._load(self._saved.take(document))
        self._current = document
        self._short = self._full = None  # only the full window is kept for a document left

    def _prompt(
        self,
        window: PromptWindow,
        max_new: int,
        context: str = "",
        document: str = "",
        files: tuple[ContextFile, ...] = (),
    ) -> tuple[list[int], bytes]:
        """Prompt tokens, and the bytes of the prompt's last token when it is held back for token healing.

        A prefix that ends mid-word ends on a token the model rarely sees there ("option_s"); holding that token
        back and making the first generated token start with its bytes lets the model pick the natural one. A model
        with FIM tokens gets a fill-in-the-middle prompt (inference/completion/fim.py) instead.
        """
        model = self.model
        fim = model.fim
        tokens = model.tokenize(window.prefix)
        # With overflow = "structure" the model keeps what the code's structure says of a long prompt: none is cut here.
        unbounded = model.overflow == "structure"
        if fim is None:
            heal = model.piece(tokens.pop()) if tokens else b""
            room = sys.maxsize if unbounded else model.n_ctx - max_new - 2
            tokens = tokens[max(0, len(tokens) - room) :]
            extra = model.tokenize(context)[: max(0, room - len(tokens))] if context else []  # context gives way
            return [model.bos, *extra, *tokens], heal
        suffix = model.tokenize(window.suffix)
        path = PurePosixPath(unquote(urlsplit(document).path))
        head = [model.bos] if model.add_bos else []
        repository = repository_part(fim, model.tokenize, path.parent.name, path.name, context, files)
        room = sys.maxsize if unbounded else model.n_ctx - max_new - len(head) - len(suffix) - 4
        tokens = tokens[max(0, len(tokens) - room) :]
        if len(repository) > room - len(tokens):  # the context gives way first, from its start
            repository = repository[len(repository) - max(0, room - len(tokens)) :]
        order = choose_order(self.config.fim_order, fim, model.architecture)
        return fim_prompt(fim, order, [*head, *repository], tokens, suffix), b""

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


def _left(held: Sequence[int], prompt: Sequence[int]) -> int:
    """Tokens of `prompt` still to evaluate when the context holds `held`."""
    return len(prompt) - common_prefix_length(held, prompt)
