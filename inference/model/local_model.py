"""A llama.cpp model whose context holds one token sequence, reused by prefix from call to call.

The high-level `llama_cpp.Llama` loads the model and tokenizes; decoding goes through llama.cpp's C API so that
the sequence can be cut back, saved and restored per document, and so that several positions' logits can be read
from one batch (drafted tokens are verified that way).
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import ctypes.util
import io
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import llama_cpp
import numpy as np
import numpy.typing as npt
from llama_cpp import llama_grammar

from cove.config import ModelConfig
from cove.errors import Cancelled, ModelError
from cove.inference.model.gguf_meta import read_metadata
from cove.inference.model.kv_memory import shape_from_metadata
from cove.inference.model.model_files import Progress, locate_model
from cove.inference.model.overflow import StructureOverflow
from cove.inference.model.vocabulary import FimTokens

#: ggml element types of the KV cache by config name.
KV_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0}

#: Prompt tokens evaluated at a time by `constrained` when someone else may need the context between two chunks.
PREEMPTIBLE_CHUNK_TOKENS = 4

#: Sequence id of the one sequence the context holds.
SEQ = 0

logger = logging.getLogger(__name__)


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _route_llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    # llama.cpp writes to stderr by default, which would clutter the CLI's output and the editor's LSP log.
    logger.debug("llama.cpp: %s", text.decode("utf-8", errors="replace").rstrip())


llama_cpp.llama_log_set(_route_llama_log, ctypes.c_void_p())


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def release_freed_memory() -> None:
    """Give the heap's freed pages back to the system. A grammar-constrained reply (llama.cpp's grammar sampler
    over Gemma's 262K-token vocabulary) frees ~150 MB that glibc would otherwise keep resident for good."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def open_local_model(config: ModelConfig, progress: Progress | None = None) -> LocalModel:
    """The one way Cove loads a local model: the file `config` names (the default model, assembled first when
    missing), loaded, its vocabulary indexed for token healing (now, not on the first keystroke)."""
    path = locate_model(config, progress=progress)
    try:
        meta = read_metadata(path)
    except ModelError as err:
        raise ModelError(f"cannot load model {path}: {str(err).removeprefix(f'{path} ')}") from err
    trained = meta.get(f"{meta.get('general.architecture', '')}.context_length")
    if isinstance(trained, int) and not isinstance(trained, bool) and config.n_ctx > trained:
        raise ModelError(
            f"model.n_ctx is {config.n_ctx}, more than {path.name} was trained on ({trained} tokens); "
            f"set model.n_ctx to {trained} or less"
        )
    model = LocalModel(path, config)
    model.tokens_starting_with(b"")
    logger.info("loaded %s (%s)", path, model.description)
    return model


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LocalModel:
    """One GGUF model and one llama.cpp context. Not thread-safe: callers hold a lock."""

    def __init__(self, path: Path, config: ModelConfig) -> None:
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist; run `cove model` to assemble the default model")
        threads = config.n_threads or os.cpu_count() or 1
        # verbose=False would make llama-cpp-python point file descriptors 1 and 2 at /dev/null while it loads,
        # swallowing whatever another thread writes meanwhile (the LSP server's replies go to stdout). Its own
        # prints go to sys.stderr instead, captured here; llama.cpp's log is routed to `logging` above.
        printed = io.StringIO()
        try:
            with contextlib.redirect_stderr(printed):
                quantized = config.kv_type != "f16"
                kv_type = KV_TYPES[config.kv_type]
                self._llm = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=config.n_ctx,
                    n_batch=config.n_batch,
                    n_ubatch=config.n_batch,
                    n_threads=threads,
                    n_threads_batch=threads,
                    type_k=kv_type,
                    type_v=kv_type,
                    flash_attn=quantized,  # llama.cpp needs it for a quantized V cache
                    swa_full=config.swa_full,
                    verbose=True,
                )
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"cannot load model {path}: {err}") from err
        finally:
            logger.debug("llama-cpp-python: %s", printed.getvalue())
        self._description = str(self._llm._model.desc())
        self._llm.verbose = False  # loaded: its later prints (prefix matches, timings) would go to stderr unasked
        self.path = path
        #: The weights' size: the file's (what loading it maps into memory).
        self.file_bytes = path.stat().st_size
        self.kv_shape = shape_from_metadata(self._llm.metadata)
        #: Tokens the sliding layers keep when the cache is SWA-aware (0: every layer keeps every token).
        self.swa_window = 0 if config.swa_full else self.kv_shape.sliding_window
        self.n_ctx = config.n_ctx
        self.overflow = config.overflow
        self.sink_tokens = config.sink_tokens
        #: Tokens dropped from the middle of the sequence so far (eviction while decoding).
        self.evicted = 0
        self.n_batch = config.n_batch
        self._ctx = self._llm.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self.n_vocab = self._llm.n_vocab()
        self._batch = llama_cpp.llama_batch_init(config.n_batch, 0, 1)
        #: Tokens whose keys and values the context holds, in order.
        self.tokens: list[int] = []
        self.fim = self._fim_tokens()
        self._piece_index: tuple[list[bytes], npt.NDArray[np.int64]] | None = None
        self._structure = StructureOverflow(self.n_ctx, self.sink_tokens, self.piece)

    def close(self) -> None:
        """Free the context and the model."""
        llama_cpp.llama_batch_free(self._batch)
        self._llm.close()

    def _fim_tokens(self) -> FimTokens | None:
        ids = (
            llama_cpp.llama_vocab_fim_pre(self._vocab),
            llama_cpp.llama_vocab_fim_suf(self._vocab),
            llama_cpp.llama_vocab_fim_mid(self._vocab),
        )
        if min(ids) < 0:
            return None
        repo, file_sep = llama_cpp.llama_vocab_fim_rep(self._vocab), llama_cpp.llama_vocab_fim_sep(self._vocab)
        text = llama_cpp.llama_vocab_get_text(self._vocab, ids[0]) or b""
        optional = (repo if repo >= 0 else None, file_sep if file_sep >= 0 else None)
        return FimTokens(*ids, *optional, text.decode("utf-8", errors="replace"))

    @property
    def architecture(self) -> str:
        """The GGUF's `general.architecture` ("gemma3", "qwen2", ...)."""
        return str(self._llm.metadata.get("general.architecture", ""))

    @property
    def add_bos(self) -> bool:
        """Whether the vocabulary asks for a BOS token before a prompt."""
        return bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))

    @property
    def description(self) -> str:
        """The model's own description (architecture, size, quantisation), read once at load (it stays readable
        after `close`, from another thread)."""
        return self._description

    def tokenize(self, text: str, bos: bool = False) -> list[int]:
        """Tokens of `text`, read as plain text (special-token names in code are not special)."""
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False))

    @property
    def bos(self) -> int:
        """The begin-of-sequence token."""
        return int(self._llm.token_bos())

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of `tokens`; an incomplete UTF-8 sequence at the end is left out."""
        return bytes(self._llm.detokenize(list(tokens))).decode("utf-8", errors="ignore")

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (empty for control tokens)."""
        buffer = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:n]

    def tokens_starting_with(self, prefix: bytes) -> npt.NDArray[np.int64]:
        """Ids of every token whose bytes begin with `prefix` (the vocabulary is indexed once, on first use)."""
        if self._piece_index is None:
            pieces = [self.piece(token) for token in range(self.n_vocab)]
            order = sorted(range(self.n_vocab), key=pieces.__getitem__)
            self._piece_index = ([pieces[i] for i in order], np.array(order, dtype=np.int64))
        keys, ids = self._piece_index
        low = bisect.bisect_left(keys, prefix)
        upper = prefix.rstrip(b"\xff")
        # Every string that starts with `prefix` sorts below `prefix` with its last byte raised by one.
        high = bisect.bisect_left(keys, upper[:-1] + bytes([upper[-1] + 1]), lo=low) if upper else len(keys)
        return ids[low:high]

    def greedy_among(self, candidates: npt.NDArray[np.int64], index: int = -1) -> int:
        """The most likely next token among `candidates`."""
        logits = self.logits(index)
        return int(candidates[int(np.argmax(logits[candidates]))])

    def is_end(self, token: int) -> bool:
        """Whether `token` ends generation (end of sequence, end of turn)."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def fit(self, tokens: Sequence[int], language: str | None = None) -> Sequence[int]:
        """The tokens the context holds for the prompt `tokens`: all of them, but with `overflow = "structure"` those
        the code's structure keeps of a prompt too long for the context (inference/model/overflow.py; `language` names
        the grammar that ranks them, None ranks by indentation)."""
        return self._structure.fit(tokens, language) if self.overflow == "structure" else tokens

    def prefill(
        self, tokens: Sequence[int], should_stop: Callable[[], bool] | None = None, language: str | None = None
    ) -> int:
        """Make the context hold `tokens` (as `fit` cuts them), reusing the longest common prefix; returns how many
        were reused.

        Afterwards the logits of the last token are ready for `greedy`. `should_stop` is checked between batches; a
        stopped prefill leaves a valid prefix in the context for the next call.
        """
        if not tokens:
            raise ModelError("cannot evaluate an empty prompt")
        tokens = self.fit(tokens, language)
        if len(tokens) >= self.n_ctx and self.overflow == "error":
            raise ModelError(f"prompt of {len(tokens)} tokens does not fit the context of {self.n_ctx}")
        # The last token is always evaluated again: its logits are needed and the context keeps no logits.
        self.truncate(min(common_prefix_length(self.tokens, tokens), len(tokens) - 1))
        reused = len(self.tokens)
        rest = tokens[reused:]
        for start in range(0, len(rest), self.n_batch):
            if should_stop is not None and should_stop():
                raise Cancelled("completion cancelled during prefill")
            self.decode(rest[start : start + self.n_batch])
        return reused

    def warm(
        self, tokens: Sequence[int], should_stop: Callable[[], bool], chunk: int, language: str | None = None
    ) -> int:
        """Evaluate `tokens` (as `fit` cuts them) ahead of the request that will need them, `chunk` tokens at a time,
        until all are held or `should_stop()` (checked before each chunk); returns how many were evaluated. No logits
        are computed: `prefill` evaluates a prompt's last token again anyway."""
        tokens = self.fit(tokens, language)
        held = common_prefix_length(self.tokens, tokens)
        if held == len(tokens):
            return 0
        self.truncate(held)
        start = len(self.tokens)
        for at in range(start, len(tokens), chunk):
            if should_stop():
                break
            self.decode(tokens[at : at + chunk], logits=False)
        return len(self.tokens) - start

    def truncate(self, length: int) -> None:
        """Drop every token from position `length` on.

        With an SWA-aware cache the sliding layers keep only their last window of tokens: going back further than
        they reach would leave them without the window before `length`, so everything is dropped instead (the
        caller re-evaluates) and outputs stay those of a fresh evaluation.
        """
        if length >= len(self.tokens):
            return
        if self.swa_window and length > 0:
            oldest = llama_cpp.llama_memory_seq_pos_min(self._memory, SEQ)
            # The window before `length` starts at 0 while the sequence is shorter than the window: all held.
            if max(0, length - self.swa_window) < oldest:
                length = 0
        llama_cpp.llama_memory_seq_rm(self._memory, SEQ, length, -1)
        del self.tokens[length:]

    def decode(self, tokens: Sequence[int], all_logits: bool = False, logits: bool = True) -> None:
        """Append `tokens` (at most n_batch) to the context; logits for the last one, for each with `all_logits`, or
        for none without `logits`."""
        n = len(tokens)
        if len(self.tokens) + n > self.n_ctx:
            self._evict(len(self.tokens) + n - self.n_ctx)
        batch = self._batch
        batch.n_tokens = n
        base = len(self.tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = base + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = SEQ
            batch.logits[i] = all_logits or (logits and i == n - 1)
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            raise ModelError(f"llama_decode failed with status {status}")
        self.tokens.extend(tokens)

    def _evict(self, needed: int) -> None:
        """Make room for `needed` tokens: keep the sink tokens and the most recent ones, drop those between
        (a quarter of the context at a time, so that eviction is rare) and shift the rest back (StreamingLLM); or,
        with `overflow = "structure"`, drop the spans the code's structure can best spare."""
        sink = self.sink_tokens
        if self.overflow == "error" or not llama_cpp.llama_memory_can_shift(self._memory):
            raise ModelError(f"the context of {self.n_ctx} tokens is full")
        if self.overflow == "structure":
            kept = self._structure.evict(self._memory, SEQ, self.tokens, needed)
            self.evicted += len(self.tokens) - len(kept)
            self.tokens = kept
            return
        drop = min(max(needed, self.n_ctx // 4), len(self.tokens) - sink)
        if drop < needed:
            raise ModelError(f"the context of {self.n_ctx} tokens cannot make room for {needed} more")
        llama_cpp.llama_memory_seq_rm(self._memory, SEQ, sink, sink + drop)
        llama_cpp.llama_memory_seq_add(self._memory, SEQ, sink + drop, -1, -drop)
        del self.tokens[sink : sink + drop]
        self.evicted += drop

    def logits(self, index: int = -1) -> npt.NDArray[np.float32]:
        """Logits of the `index`-th output of the last decode (-1: the last)."""
        pointer = llama_cpp.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def greedy(self, index: int = -1) -> int:
        """The most likely next token after the `index`-th output of the last decode."""
        return int(np.argmax(self.logits(index)))

    def clear(self) -> None:
        """Drop every token."""
        llama_cpp.llama_memory_seq_rm(self._memory, SEQ, -1, -1)
        self.tokens = []

    def constrained(
        self,
        prompt: str,
        json_schema: dict[str, object],
        max_tokens: int = 256,
        between_tokens: Callable[[], None] | None = None,
    ) -> str:
        """Greedy text for `prompt` that is guaranteed to match `json_schema` (llama.cpp grammar sampling).

        This goes through the high-level `Llama`, which keeps its own idea of the context, so the sequence this
        class manages is cleared before and after: the next completion starts cold. `between_tokens` is called
        between two chunks of PREEMPTIBLE_CHUNK_TOKENS of the prompt and after each token is chosen (before it is
        evaluated): it may lend the context to someone else meanwhile (`lend_context`); no logits it would change
        are read again.
        """
        grammar = llama_grammar.LlamaGrammar.from_json_schema(json.dumps(json_schema), verbose=False)
        self.clear()
        self._llm.reset()  # type: ignore[no-untyped-call]
        # The tokens `create_completion` would make of the text (a list is taken as it is).
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=self.add_bos, special=True)
        stopping = None
        try:
            if between_tokens is not None:
                hook = between_tokens
                # The prompt but its last token, a chunk at a time, with the hook between chunks: `create_completion`
                # finds them in the cache and evaluates only the last one.
                # Through the low-level batch without logits: the output layer over the vocabulary (262K rows for
                # Gemma) is skipped, which is most of a small chunk's cost; `Llama` is then told what it holds.
                for start in range(0, len(tokens) - 1, PREEMPTIBLE_CHUNK_TOKENS):
                    hook()
                    self.decode(tokens[start : min(start + PREEMPTIBLE_CHUNK_TOKENS, len(tokens) - 1)], logits=False)
                self._llm.input_ids[: len(self.tokens)] = self.tokens
                self._llm.n_tokens = len(self.tokens)

                def never_stop(_ids: object, _logits: object) -> bool:
                    hook()
                    return False

                stopping = llama_cpp.StoppingCriteriaList([never_stop])
            result = self._llm.create_completion(
                tokens, grammar=grammar, max_tokens=max_tokens, temperature=0.0, stopping_criteria=stopping
            )
        finally:
            self._llm.reset()  # type: ignore[no-untyped-call]
            self.clear()
        return str(result["choices"][0]["text"])  # type: ignore[index]

    @contextlib.contextmanager
    def lend_context(self) -> Iterator[None]:
        """Inside, the context is empty for someone else; the sequence it held (this class's or the high-level
        `Llama`'s, mid-generation) is saved and put back after, token for token."""
        size = llama_cpp.llama_state_seq_get_size(self._ctx, SEQ)
        buffer = (ctypes.c_uint8 * size)()  # kept as it is: no copy to bytes and back (a keystroke waits on this)
        written = llama_cpp.llama_state_seq_get_data(self._ctx, buffer, size, SEQ)
        tokens = list(self.tokens)
        self.clear()
        try:
            yield
        finally:
            self.clear()
            if llama_cpp.llama_state_seq_set_data(self._ctx, buffer, written, SEQ) == 0:
                raise ModelError("the KV state lent to another request could not be put back")
            self.tokens = tokens

    def save_state(self) -> bytes:
        """The KV state of the sequence, serialised."""
        size = llama_cpp.llama_state_seq_get_size(self._ctx, SEQ)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx, buffer, size, SEQ)
        return ctypes.string_at(buffer, written)

    def restore_state(self, tokens: Sequence[int], state: bytes) -> None:
        """Make the context hold `tokens` again from a state saved by `save_state`."""
        self.clear()
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(self._ctx, buffer, len(state), SEQ) == 0:
            self.clear()  # a state that does not load costs a cold prefill, nothing more
            return
        self.tokens = list(tokens)
