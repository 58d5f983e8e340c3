"""The torch path's KV cache: one store per layer, each deciding what it holds.

A store receives every new key/value (already rotated, so a kept token keeps its position), gives attention what it
holds, and sees the attention probabilities afterwards — which is where score-based policies learn what matters and
where every store trims itself back to its budget. Memory is what the stores hold: `nbytes` sums their tensors.
Sliding-window layers keep their window (they are small and fixed); policies act on the global layers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from cove.inference.research.torch_gemma import GemmaConfig


class LayerStore:
    """Keeps every token it is given (the full cache); subclasses trim in `settle`."""

    #: Rows of attention of the latest queries kept for observation-window scores (SnapKV's window).
    observe_window = 32

    def __init__(self, dtype: torch.dtype = torch.float16, record: bool = False) -> None:
        self.dtype = dtype
        self.record = record
        self.keys = torch.empty(0)  # [H_kv, N, D]
        self.values = torch.empty(0)  # [H_kv, N, D]
        self.positions = torch.empty(0, dtype=torch.int32)  # [N]
        #: H2O's accumulated attention per held token (summed over query heads and queries).
        self.scores = torch.empty(0)  # [N]
        #: The latest queries' attention to the held tokens, summed over query heads.
        self.recent_attention = torch.empty(0, 0)  # [W, N]
        #: The most bytes held at once: after a step's tokens were added, before the store trimmed itself.
        self.peak_bytes = 0

    @property
    def tokens(self) -> int:
        return int(self.positions.shape[0])

    def append(self, keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> None:
        """keys/values: [H_kv, T, D]; positions: [T]."""
        keys, values = keys.to(self.dtype), values.to(self.dtype)
        if self.tokens == 0:
            self.keys, self.values = keys, values
        else:
            self.keys = torch.cat([self.keys, keys], dim=1)
            self.values = torch.cat([self.values, values], dim=1)
        self.positions = torch.cat([self.positions, positions.to(torch.int32)])

    def view(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What attention sees: keys, values ([H_kv, N, D]), positions ([N]) and a logit bias ([N]) or None."""
        return self.keys, self.values, self.positions.long(), None

    def observe(self, probs: torch.Tensor) -> None:
        """probs: [H, T, N], the attention of this step's queries to everything held (after `append`)."""
        if self.record or self.wants_scores:
            held = probs.shape[-1]
            per_query = probs.sum(dim=0)  # [T, N]
            grown = torch.zeros(held)
            grown[: self.scores.shape[0]] = self.scores
            self.scores = grown + per_query.sum(dim=0)
            rows = torch.zeros(self.recent_attention.shape[0], held)
            rows[:, : self.recent_attention.shape[1]] = self.recent_attention
            self.recent_attention = torch.cat([rows, per_query])[-self.observe_window :]
        self.peak_bytes = max(self.peak_bytes, self.nbytes())
        self.settle()

    @property
    def wants_scores(self) -> bool:
        return False

    def settle(self) -> None:
        """Trims what is held back to the store's budget (nothing for the full cache)."""

    def keep(self, index: torch.Tensor) -> None:
        """Holds only the tokens at `index` (sorted, so positions stay in order)."""
        index = index.sort().values
        self.keys, self.values = self.keys[:, index], self.values[:, index]
        self.positions = self.positions[index]
        if self.scores.shape[0]:
            self.scores = self.scores[index]
        if self.recent_attention.shape[0]:
            self.recent_attention = self.recent_attention[:, index]

    def nbytes(self) -> int:
        """Bytes of the cache proper: keys, values, positions and whatever a policy keeps per token to use them."""
        return sum(t.numel() * t.element_size() for t in self.held_tensors())

    def held_tensors(self) -> list[torch.Tensor]:
        return [self.keys, self.values, self.positions]

    def copy_from(self, other: LayerStore) -> None:
        """Starts from another store's contents (compressing a full cache after a shared prefill)."""
        self.keys, self.values = other.keys.to(self.dtype), other.values.to(self.dtype)
        self.positions = other.positions.clone()
        if self.record or self.wants_scores:
            self.scores = other.scores.clone()
            self.recent_attention = other.recent_attention.clone()
        self.settle()


class WindowStore(LayerStore):
    """A sliding-window layer: keeps the last `window` positions (what its queries can still see)."""

    def __init__(self, window: int, dtype: torch.dtype = torch.float16) -> None:
        super().__init__(dtype)
        self.window = window

    def settle(self) -> None:
        if self.tokens:
            newest = int(self.positions[-1])
            visible = torch.nonzero(self.positions > newest - self.window).flatten()
            if visible.shape[0] < self.tokens:
                self.keep(visible)


class LineMap:
    """The source line each position is on (a newline token ends its line), and what the code's structure says of
    it (`code_structure.Rank`, given with the prompt), shared by a cache's stores."""

    #: The rank of a position the prompt's ranks do not cover (the continuation: the newest code, kept).
    NEWEST_RANK = 4

    def __init__(self) -> None:
        self.of = torch.empty(0, dtype=torch.int32)  # [positions]
        self.next_line = 0
        self.ranks = torch.empty(0, dtype=torch.int32)  # [prompt positions]

    def rank_of(self, positions: torch.Tensor) -> torch.Tensor:
        """Structure ranks of `positions` ([N] -> [N])."""
        known = positions < self.ranks.shape[0]
        ranks = torch.full(positions.shape, self.NEWEST_RANK, dtype=torch.int32)
        ranks[known] = self.ranks[positions[known].long()]
        return ranks

    def extend(self, ends_line: torch.Tensor) -> None:
        """ends_line: [T] bool, whether each new token holds a newline."""
        ends = ends_line.to(torch.int32)
        self.of = torch.cat([self.of, self.next_line + torch.cumsum(ends, 0, dtype=torch.int32) - ends])
        self.next_line += int(ends.sum())

    def copy(self) -> LineMap:
        twin = LineMap()
        twin.of, twin.next_line, twin.ranks = self.of.clone(), self.next_line, self.ranks
        return twin


@dataclass
class KvCache:
    """One store per layer; positions continue from `next_position` whatever the stores dropped."""

    layers: list[LayerStore]
    global_layers: list[int]
    lines: LineMap = field(default_factory=LineMap)
    next_position: int = 0

    def advance(self, tokens: int) -> None:
        self.next_position += tokens

    def peak_global_bytes(self) -> int:
        """The most bytes the global layers held at once (each store's peak comes at the same step: when it holds
        the step's new tokens and has not trimmed yet) — what a policy is charged for."""
        return sum(self.layers[i].peak_bytes for i in self.global_layers)

    def reset_peaks(self) -> None:
        """Peaks count from now on (after compressing a prompt's cache)."""
        for store in self.layers:
            store.peak_bytes = store.nbytes()

    def global_bytes(self) -> int:
        return sum(self.layers[i].nbytes() for i in self.global_layers)

    def sliding_bytes(self) -> int:
        return sum(store.nbytes() for i, store in enumerate(self.layers) if i not in self.global_layers)

    def global_tokens(self) -> list[int]:
        return [self.layers[i].tokens for i in self.global_layers]


def build_cache(
    config: GemmaConfig, make_global: list[LayerStore], dtype: torch.dtype, lines: LineMap | None = None
) -> KvCache:
    """Sliding layers get their window, global layers the given stores (in order)."""
    stores = iter(make_global)
    layers = [next(stores) if config.is_global(i) else WindowStore(config.window, dtype) for i in range(config.layers)]
    return KvCache(layers=layers, global_layers=config.global_layers, lines=lines or LineMap())


def full_cache(config: GemmaConfig, dtype: torch.dtype = torch.float32, record: bool = False) -> KvCache:
    """Every token on every global layer; `record` keeps the attention statistics that policies compress from."""
    return build_cache(config, [LayerStore(dtype, record=record) for _ in config.global_layers], dtype)
