"""What llama.cpp's context keeps when a sequence outgrows it, by the code's structure (`[model] overflow =
"structure"`).

StreamingLLM (`overflow = "streaming"`) keeps a sequence's first tokens and its latest. This keeps those too (the
attention sinks, and the latest tokens for three quarters of what it keeps), and fills the rest with what the code's
structure says a model needs most (inference/model/code_structure.py: signatures, imports and the scopes around the end
before other code, before the bodies of distant functions, before comments and long strings). Two cases:

- A prompt longer than the context allows is cut down before anything is evaluated: the spans left out are never
  prefilled, and the tokens kept are evaluated as one contiguous sequence, exactly as a prompt of only those tokens.
  The choice is remembered: a later prompt that extends this one (the next keystrokes) leaves out the same spans for
  as long as the rest fits, so the tokens held stay its prefix and are reused; only then is a new choice made.
- A held sequence that outgrows the context while decoding (a long generation) loses its lowest-ranked spans from
  the KV cache (`llama_memory_seq_rm`), each gap closed by shifting what follows back (`llama_memory_seq_add`), as
  StreamingLLM's eviction does with its one span.

Either way the sequence is cut to KEEP_SHARE of the context, so that what comes next fits without another cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import llama_cpp

from cove.errors import ModelError
from cove.inference.model.code_structure import choose_kept, dropped_spans, token_ranks

#: Share of the context a sequence is cut down to (what the next keystrokes and answers fill before the next cut).
KEEP_SHARE = 0.75
#: The most of the context a prompt may fill; a longer one is cut to KEEP_SHARE (the rest is room for the answer).
FULL_SHARE = 0.875
#: Share of what is kept that is the latest tokens, whole; the structure chooses the rest. Next lines depend on the code
#: just above them more than on distant signatures: on benchmarks/kv_overflow.py --seed 0, keeping 50% / 25% of the
#: prompt, a recent half got 30 / 23 exact lines of full's 31, a recent three quarters 32 / 29 (docs/kv-compression.md).
RECENT_SHARE = 0.75

Span = tuple[int, int]


@dataclass(frozen=True)
class Selection:
    """The spans ([start, end), in order) left out of `prompt`."""

    prompt: tuple[int, ...]
    spans: tuple[Span, ...]


def without_spans(tokens: Sequence[int], spans: Sequence[Span]) -> list[int]:
    """`tokens` with the `spans` (in order, not overlapping) left out."""
    kept: list[int] = []
    start = 0
    for begin, end in spans:
        kept.extend(tokens[start:begin])
        start = end
    kept.extend(tokens[start:])
    return kept


def remove_spans(memory: llama_cpp.llama_memory_t, seq: int, spans: Sequence[Span]) -> None:
    """Remove the positions of `spans` from sequence `seq` of a llama.cpp memory and close each gap, last span
    first (so that the positions of those before it stay what they were)."""
    for start, end in reversed(spans):
        if not llama_cpp.llama_memory_seq_rm(memory, seq, start, end):
            raise ModelError(f"llama.cpp could not remove positions {start}-{end} from the KV cache")
        llama_cpp.llama_memory_seq_add(memory, seq, end, -1, start - end)


class StructureOverflow:
    """The structure overflow policy of one model's context of `n_ctx` tokens; `piece` gives a token's bytes."""

    def __init__(
        self, n_ctx: int, sinks: int, piece: Callable[[int], bytes], recent_share: float = RECENT_SHARE
    ) -> None:
        self.n_ctx = n_ctx
        self.sinks = sinks
        self.recent_share = recent_share
        self._piece = piece
        self._pieces: dict[int, str] = {}
        #: The last prompt that was cut, and what was left out of it.
        self.selection: Selection | None = None
        #: The language of the last prompt (None: ranked by indentation), for ranking what a generation adds to it.
        self.language: str | None = None

    @property
    def keep(self) -> int:
        """Tokens a cut leaves."""
        return int(self.n_ctx * KEEP_SHARE)

    def fit(self, tokens: Sequence[int], language: str | None) -> Sequence[int]:
        """The tokens the context should hold for the prompt `tokens`: all of them when they fit in FULL_SHARE of the
        context; else without the spans left out of the last prompt cut, when that prompt's start is this one's
        and the rest fits; else those that a new choice keeps."""
        self.language = language
        limit = int(self.n_ctx * FULL_SHARE)
        if len(tokens) <= limit:
            return tokens
        again = self._spans_again(tokens)
        if again is not None:
            kept = without_spans(tokens, again)
            if len(kept) <= limit:
                self.selection = Selection(tuple(tokens), again)
                return kept
        spans = self.choose(tokens, self.keep)
        self.selection = Selection(tuple(tokens), tuple(spans))
        return without_spans(tokens, spans)

    def _spans_again(self, tokens: Sequence[int]) -> tuple[Span, ...] | None:
        """The last selection's spans that `tokens` shares with its prompt and that lie before the recent window."""
        if self.selection is None:
            return None
        previous = self.selection.prompt
        same = 0
        for a, b in zip(previous, tokens, strict=False):
            if a != b:
                break
            same += 1
        end = min(same, len(tokens) - self._recent(self.keep))
        spans = tuple(span for span in self.selection.spans if span[1] <= end)
        return spans or None

    def choose(self, tokens: Sequence[int], keep: int) -> list[Span]:
        """The spans of `tokens` to leave out so that `keep` remain: the lowest ranked and furthest back first, never
        the first `sinks` nor the recent window."""
        ranks = token_ranks([self.text_of(token) for token in tokens], self.language)
        if keep < self.sinks:
            raise ModelError(f"the context of {self.n_ctx} tokens cannot keep {keep} of {len(tokens)} tokens")
        return dropped_spans(choose_kept(ranks, keep, self.sinks, self._recent(keep)))

    def _recent(self, keep: int) -> int:
        """The recent window of a cut to `keep` tokens."""
        return max(0, min(int(keep * self.recent_share), keep - self.sinks))

    def evict(self, memory: llama_cpp.llama_memory_t, seq: int, held: Sequence[int], needed: int) -> list[int]:
        """Make room for `needed` more tokens in sequence `seq` that holds `held`: its lowest-ranked spans are removed
        from the KV cache and the gaps closed; returns the tokens it holds after."""
        keep = min(self.keep, self.n_ctx - needed)
        if keep >= len(held):
            return list(held)
        spans = self.choose(held, keep)
        remove_spans(memory, seq, spans)
        return without_spans(held, spans)

    def text_of(self, token: int) -> str:
        """A token's text (cached: the same tokens come back with every keystroke)."""
        text = self._pieces.get(token)
        if text is None:
            text = self._pieces[token] = self._piece(token).decode("utf-8", errors="replace")
        return text
