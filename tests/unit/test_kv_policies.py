"""KV policies on synthetic keys and attention: what each keeps, without a model."""

from __future__ import annotations

import torch

from cove.inference.research.kv_cache import LayerStore, LineMap, WindowStore
from cove.inference.research.kv_eval import Score, bootstrap_ratio
from cove.inference.research.kv_policies import (
    H2OStore,
    LineStore,
    MergeStore,
    SnapKVStore,
    StreamingStore,
    StructureStore,
    pyramid_capacities,
    quantized_selection,
)
from cove.inference.research.kv_quant import GROUP, RESIDUAL, KiviStore


def fill(store: LayerStore, tokens: int, attention: torch.Tensor | None = None, dim: int = 8) -> None:
    """Appends `tokens` random keys/values at positions 0.. and lets the store see `attention` ([N] per query)."""
    torch.manual_seed(0)
    store.append(torch.randn(1, tokens, dim), torch.randn(1, tokens, dim), torch.arange(tokens))
    rows = attention if attention is not None else torch.full((tokens,), 1.0 / tokens)
    store.observe(rows.expand(1, 1, tokens).clone())  # one head, one query


def test_line_map_assigns_newline_tokens_to_the_line_they_end() -> None:
    lines = LineMap()
    lines.extend(torch.tensor([False, False, True, False, True]))
    lines.extend(torch.tensor([False, True]))
    assert lines.of.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert lines.next_line == 3


def test_line_store_keeps_whole_lines_around_the_attended_token() -> None:
    lines = LineMap()
    lines.extend(torch.tensor([i % 3 == 2 for i in range(12)]))  # four lines of three tokens
    store = LineStore(capacity=6, dtype=torch.float32, lines=lines)
    store.observe_window = 2
    attention = torch.full((12,), 0.01)
    attention[4] = 0.9  # the middle of the second line
    fill(store, 12, attention)
    kept = set(store.positions.tolist())
    assert {3, 4, 5} <= kept  # the whole line of the attended token
    assert {10, 11} <= kept  # the observation window
    assert store.tokens == 6


def test_streaming_keeps_sinks_and_recent() -> None:
    store = StreamingStore(capacity=8, dtype=torch.float32)
    fill(store, 20)
    assert store.positions.tolist() == [0, 1, 2, 3, 16, 17, 18, 19]


def test_h2o_keeps_heavy_hitters_and_recent() -> None:
    store = H2OStore(capacity=8, dtype=torch.float32)
    attention = torch.full((20,), 0.01)
    attention[[2, 7, 9, 11]] = 0.5
    fill(store, 20, attention)
    assert store.positions.tolist() == [2, 7, 9, 11, 16, 17, 18, 19]


def test_merge_keeps_the_mass_of_every_token() -> None:
    store = MergeStore(capacity=8, dtype=torch.float32)
    fill(store, 20)
    assert store.tokens == 8
    assert abs(float(store.log_mass.exp().sum()) - 20) < 1e-4
    _, _, _, bias = store.view()
    assert bias is not None and float(bias.max()) > 0  # merged slots weigh as the tokens they stand for


def test_window_store_keeps_what_its_queries_can_see() -> None:
    store = WindowStore(window=5, dtype=torch.float32)
    fill(store, 12)
    assert store.positions.tolist() == [7, 8, 9, 10, 11]


def test_pyramid_budgets_keep_the_total() -> None:
    assert pyramid_capacities(100, 3) == [150, 100, 50]
    assert pyramid_capacities(100, 1) == [100]


def test_structure_store_drops_the_lowest_rank_furthest_back_first() -> None:
    lines = LineMap()
    lines.ranks = torch.tensor([3] * 4 + [0, 1, 0, 1, 2, 2, 3, 0] + [4] * 8, dtype=torch.int32)
    store = StructureStore(capacity=14, dtype=torch.float32, lines=lines)
    store.observe_window = 4
    fill(store, 20)
    # Sinks (0-3) and the latest four (16-19) stay; of the rest, the six best: ranks 4, 4, 4, 4, then 3 (10), 2 (9).
    assert store.positions.tolist() == [0, 1, 2, 3, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19]


def test_the_peak_counts_the_new_token_before_the_trim() -> None:
    store = StreamingStore(capacity=8, dtype=torch.float32)
    fill(store, 20)
    per_token = store.nbytes() // store.tokens
    assert store.peak_bytes == 20 * per_token  # all twenty were held while attention ran
    store.peak_bytes = store.nbytes()
    store.append(torch.randn(1, 1, 8), torch.randn(1, 1, 8), torch.tensor([20]))
    store.observe(torch.full((1, 1, 9), 1 / 9))
    assert store.tokens == 8 and store.peak_bytes == 9 * per_token


def kivi_filled(store: LayerStore, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    keys, values = torch.randn(1, tokens, 64), torch.randn(1, tokens, 64)
    store.append(keys, values, torch.arange(tokens))
    store.observe(torch.full((1, 1, tokens), 1.0 / tokens))
    return keys, values


def test_kivi_keeps_the_newest_in_full_precision_and_drops_any_token_exactly() -> None:
    store = KiviStore(bits=4, dtype=torch.float32)
    kivi_filled(store, 300)
    assert store.keys.shape[1] <= RESIDUAL and store.quantized_tokens == 300 - store.keys.shape[1]
    assert store.quantized_tokens % GROUP == 0
    keys, values, _, _ = store.view()
    held = store.nbytes()
    keep = torch.tensor([0, 5, 31, 32, 100, 250, 299])
    store.keep(keep)
    kept_keys, kept_values, kept_positions, _ = store.view()
    assert kept_positions.tolist() == keep.tolist()
    assert torch.equal(kept_keys, keys[:, keep]) and torch.equal(kept_values, values[:, keep])
    # Dropped rows take their codes with them; a group keeps its channels' scales while a row of it is held.
    assert store.nbytes() < held / 10 and len(store.key_groups) == 3


def test_a_selection_over_kivi_entries_trims_then_quantizes() -> None:
    store = quantized_selection(SnapKVStore)(capacity=200, dtype=torch.float32)
    kivi_filled(store, 300)
    assert store.tokens == 200 and isinstance(store, KiviStore) and isinstance(store, SnapKVStore)
    assert store.quantized_tokens + store.keys.shape[1] == 200 and store.quantized_tokens > 0
    assert store.positions.tolist()[-32:] == list(range(268, 300))  # SnapKV's observation window stays


def test_bootstrap_ratio_is_paired_by_sample() -> None:
    full = [Score(lines=[True, True]), Score(lines=[True, False]), Score(lines=[False, False])]
    same = bootstrap_ratio(full, full)
    assert same == (1.0, 1.0, 1.0)  # paired: every resample agrees with itself
    half = [Score(lines=[True, False]), Score(lines=[False, False]), Score(lines=[False, False])]
    ratio, low, high = bootstrap_ratio(half, full)
    assert ratio == 1 / 3 and low <= ratio <= high
