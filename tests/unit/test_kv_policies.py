"""KV policies on synthetic keys and attention: what each keeps, without a model."""

from __future__ import annotations

import torch

from cove.inference.research.kv_cache import LayerStore, LineMap, WindowStore
from cove.inference.research.kv_policies import H2OStore, LineStore, MergeStore, StreamingStore, pyramid_capacities


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
    store = LineStore(capacity=6, lines=lines, dtype=torch.float32)
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
