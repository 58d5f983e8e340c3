"""KV-cache compression policies for the global layers, each a `LayerStore` that trims itself to a token budget.

- streaming: attention sinks plus the most recent tokens (StreamingLLM).
- h2o: half the budget for the most recent tokens, half for the heavy hitters by accumulated attention (H2O).
- snapkv: the observation window (the latest queries) votes with its attention, max-pooled along the keys so that
  neighbours of an important token stay too; the window itself is kept (SnapKV). The default model has one KV head, so
  per-head selection is per token here.
- pyramidkv: SnapKV's scores, more budget on lower global layers and less on higher ones, same total (PyramidKV).
- merge: H2O's choice of what goes, but an evicted token is merged into the most similar kept key (cosine), weighted by
  how many tokens each slot stands for, and attention adds log(count) to the slot's logit so that it weighs as the
  tokens it replaced (KVMerger / ZeroMerge style).
- lines (Cove's own, for code): SnapKV's votes, but kept by whole source lines — a line is as important as its most
  attended token — so that a definition the window points at stays with its value and its neighbours.
- structure (Cove's own, for code, no attention needed: it runs on llama.cpp too): the code's structure ranks the
  lines (`cove.inference.model.code_structure`: comments and distant function bodies lowest; imports, signatures and the
  scopes around the end highest); the lowest rank goes first, furthest back first.
KIVI-style quantization keeps every token in fewer bits instead; it lives in `kv_quant`. A selection over KIVI-4
entries (`snapkv+kivi4`, ...) keeps fewer tokens, each in 4 bits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cove.inference.research.kv_cache import KvCache, LayerStore, LineMap, build_cache
from cove.inference.research.torch_gemma import GemmaConfig

SINKS = 4
POOL_KERNEL = 7


class BudgetStore(LayerStore):
    """Trims back to `capacity` tokens after every step, keeping what `choose` returns."""

    def __init__(self, capacity: int, dtype: torch.dtype = torch.float16, lines: LineMap | None = None) -> None:
        super().__init__(dtype)
        self.capacity = max(capacity, SINKS + 1)
        self.lines = lines or LineMap()

    @property
    def wants_scores(self) -> bool:
        return True

    def settle(self) -> None:
        if self.tokens > self.capacity:
            self.keep(self.choose())

    def choose(self) -> torch.Tensor:
        raise NotImplementedError

    def top(self, scores: torch.Tensor, protected: torch.Tensor, count: int) -> torch.Tensor:
        """The protected indices plus the `count` best-scoring others."""
        scores = scores.clone()
        scores[protected] = float("-inf")
        count = max(0, min(count, self.tokens - protected.shape[0]))
        return torch.cat([protected, scores.topk(count).indices])

    def recent(self, count: int) -> torch.Tensor:
        return torch.arange(max(0, self.tokens - count), self.tokens)


class StreamingStore(BudgetStore):
    @property
    def wants_scores(self) -> bool:
        return False

    def choose(self) -> torch.Tensor:
        return torch.cat([torch.arange(SINKS), self.recent(self.capacity - SINKS)])


class H2OStore(BudgetStore):
    def choose(self) -> torch.Tensor:
        protected = self.recent(self.capacity // 2)
        return self.top(self.scores, protected, self.capacity - protected.shape[0])


def snap_scores(recent_attention: torch.Tensor) -> torch.Tensor:
    """The observation window's votes ([W, N] -> [N]), max-pooled along the keys."""
    votes = recent_attention.sum(dim=0)[None, None, :]  # [1, 1, N]
    return F.max_pool1d(votes, POOL_KERNEL, stride=1, padding=POOL_KERNEL // 2)[0, 0]


class SnapKVStore(BudgetStore):
    def choose(self) -> torch.Tensor:
        protected = self.recent(min(self.observe_window, self.capacity))
        return self.top(snap_scores(self.recent_attention), protected, self.capacity - protected.shape[0])


class LineStore(BudgetStore):
    def choose(self) -> torch.Tensor:
        protected = self.recent(min(self.observe_window, self.capacity))
        votes = self.recent_attention.sum(dim=0)  # [N]
        line = self.lines.of[self.positions.long()].long()  # [N]
        best = torch.zeros(int(line.max()) + 1).scatter_reduce(0, line, votes, reduce="amax")
        # Whole lines by their best token; within the line cut at the budget's edge, the better tokens.
        ranked = best[line] + 1e-4 * votes
        return self.top(ranked, protected, self.capacity - protected.shape[0])


class StructureStore(BudgetStore):
    """The code's structure decides: sinks and the latest tokens stay, then the highest rank, latest first (as
    `code_structure.choose_kept` does for llama.cpp)."""

    @property
    def wants_scores(self) -> bool:
        return False

    def choose(self) -> torch.Tensor:
        recent = self.recent(min(self.observe_window, self.capacity - SINKS))
        protected = torch.cat([torch.arange(min(SINKS, self.tokens - recent.shape[0])), recent])
        positions = self.positions.long()
        ranked = self.lines.rank_of(positions).double() * (positions.max() + 1) + positions  # rank, then recency
        return self.top(ranked, protected, self.capacity - protected.shape[0])


class MergeStore(H2OStore):
    """H2O's selection; the evicted are merged into their nearest kept key instead of dropped."""

    def __init__(self, capacity: int, dtype: torch.dtype = torch.float16, lines: LineMap | None = None) -> None:
        super().__init__(capacity, dtype, lines)
        self.log_mass = torch.empty(0, dtype=torch.float16)  # [N]: log of the tokens each slot stands for

    def append(self, keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> None:
        self.log_mass = torch.cat([self.log_mass, torch.zeros(positions.shape[0], dtype=torch.float16)])
        super().append(keys, values, positions)

    def view(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return self.keys, self.values, self.positions.long(), self.log_mass.float()

    def held_tensors(self) -> list[torch.Tensor]:
        return [*super().held_tensors(), self.log_mass]

    def copy_from(self, other: LayerStore) -> None:
        self.log_mass = torch.zeros(other.tokens, dtype=torch.float16)
        super().copy_from(other)

    def keep(self, index: torch.Tensor) -> None:
        index = index.sort().values
        dropped = torch.ones(self.tokens, dtype=torch.bool)
        dropped[index] = False
        gone = torch.nonzero(dropped).flatten()
        if gone.shape[0]:
            self._merge(gone, index)
        self.log_mass = self.log_mass[index]
        super().keep(index)

    def _merge(self, gone: torch.Tensor, kept: torch.Tensor) -> None:
        keys = self.keys.float()  # [H_kv, N, D]
        flat = F.normalize(keys.transpose(0, 1).reshape(self.tokens, -1), dim=-1)  # [N, H_kv*D]
        nearest = kept[(flat[gone] @ flat[kept].T).argmax(dim=-1)]  # [G]: the kept slot each evicted token joins
        mass = self.log_mass.float().exp()
        weight_gone = mass[gone]
        total = mass.index_add(0, nearest, weight_gone)  # [N]
        values = self.values.float()
        for tensor, name in ((keys, "keys"), (values, "values")):
            summed = (tensor * mass[None, :, None]).index_add(1, nearest, tensor[:, gone] * weight_gone[None, :, None])
            setattr(self, name, (summed / total[None, :, None]).to(self.dtype))
        self.scores = self.scores.index_add(0, nearest, self.scores[gone])
        self.log_mass = total.log().half()


TOKEN_POLICIES = ("streaming", "h2o", "snapkv", "pyramidkv", "merge", "lines", "structure")
QUANT_POLICIES = ("kivi4", "kivi2")
#: A token selection over KIVI-4 entries.
COMBINED_POLICIES = ("snapkv+kivi4", "pyramidkv+kivi4", "lines+kivi4", "structure+kivi4")
POLICIES = ("full", *TOKEN_POLICIES, *QUANT_POLICIES, *COMBINED_POLICIES)

_SELECTIONS: dict[str, type[BudgetStore]] = {
    "streaming": StreamingStore,
    "h2o": H2OStore,
    "snapkv": SnapKVStore,
    "pyramidkv": SnapKVStore,
    "merge": MergeStore,
    "lines": LineStore,
    "structure": StructureStore,
}


def quantized_selection(selection: type[BudgetStore], bits: int = 4) -> type[BudgetStore]:
    """`selection`'s choice of tokens, each kept KIVI-quantized (the choice is made before the newest are
    quantized; the full-precision tail is part of the budget)."""
    from cove.inference.research.kv_quant import KiviStore

    class QuantizedSelection(KiviStore, selection):  # type: ignore[valid-type, misc]
        def __init__(self, capacity: int, dtype: torch.dtype = torch.float16, lines: LineMap | None = None) -> None:
            selection.__init__(self, capacity, dtype, lines)
            self._init_groups(bits)

    QuantizedSelection.__name__ = f"{selection.__name__}Kivi{bits}"
    return QuantizedSelection


def pyramid_capacities(capacity: int, layers: int) -> list[int]:
    """Budgets for the global layers from lowest to highest: linear from 1.5x to 0.5x of the mean, same total."""
    if layers == 1:
        return [capacity]
    factors = [1.5 - i / (layers - 1) for i in range(layers)]
    return [max(SINKS + 1, round(capacity * f)) for f in factors]


def policy_stores(
    policy: str, config: GemmaConfig, capacity: int, dtype: torch.dtype, lines: LineMap
) -> list[LayerStore]:
    """The global layers' stores for `policy` at `capacity` tokens per layer (the mean, for pyramidkv)."""
    count = len(config.global_layers)
    if policy == "full":
        return [LayerStore(dtype) for _ in range(count)]
    if policy in QUANT_POLICIES:
        from cove.inference.research.kv_quant import KiviStore

        return [KiviStore(bits=int(policy[-1]), dtype=dtype) for _ in range(count)]
    selection, _, quantized = policy.partition("+")
    if selection not in _SELECTIONS or quantized not in ("", "kivi4"):
        raise ValueError(f"unknown KV policy {policy!r}; choose from {', '.join(POLICIES)}")
    kind = _SELECTIONS[selection]
    if quantized:
        kind = quantized_selection(kind)
    capacities = pyramid_capacities(capacity, count) if selection == "pyramidkv" else [capacity] * count
    return [kind(c, dtype, lines) for c in capacities]


def policy_cache(
    policy: str, config: GemmaConfig, capacity: int, dtype: torch.dtype = torch.float16, lines: LineMap | None = None
) -> KvCache:
    """A fresh cache whose global layers follow `policy`, trimming as it goes (bounded memory during prefill too)."""
    lines = lines or LineMap()
    return build_cache(config, policy_stores(policy, config, capacity, dtype, lines), dtype, lines)


def compress(
    full: KvCache, policy: str, config: GemmaConfig, capacity: int, dtype: torch.dtype = torch.float16
) -> KvCache:
    """`full` (prefilled with `record=True`) compressed to `policy`, as kvpress does after a prompt's prefill;
    peaks count from here."""
    cache = policy_cache(policy, config, capacity, dtype, full.lines.copy())
    for mine, theirs in zip(cache.layers, full.layers, strict=True):
        mine.copy_from(theirs)
    cache.next_position = full.next_position
    cache.reset_peaks()
    return cache


def capacity_for(prompt_tokens: int, budget: float) -> int:
    """Tokens per global layer for a budget given as a fraction of the prompt."""
    return max(SINKS + 1, math.ceil(prompt_tokens * budget))


def capacity_for_bytes(policy: str, config: GemmaConfig, full_tokens: int, budget: float) -> int:
    """Tokens per global layer so that, at its peak (one new token held before the trim), `policy` holds about
    `budget` of the bytes a full f16 cache of `full_tokens` holds. Only policies that select tokens have one."""
    from cove.inference.research.kv_quant import RESIDUAL, quantized_bytes_per_token

    per_token = 2 * 2 * config.kv_heads * config.head_dim + 4  # f16 key and value, int32 position
    target = budget * full_tokens * per_token
    if policy.endswith("+kivi4"):
        quantized = quantized_bytes_per_token(4, config.kv_heads, config.head_dim)
        tail = RESIDUAL * per_token
        tokens = RESIDUAL + (target - tail) / quantized if target > tail else target / per_token
        return max(SINKS + 1, math.floor(tokens) - 1)
    if policy == "merge":
        per_token += 2  # its log-count per slot
    return max(SINKS + 1, math.floor(target / per_token) - 1)
