from cove.inference.completion.prompt_lookup import draft_tokens
from cove.inference.model.document_states import KvStateCache, SavedSequence


def test_draft_follows_the_latest_earlier_occurrence() -> None:
    context = [1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 0, 1, 2, 3]
    assert draft_tokens(context, ngram=3, max_draft=2) == [7, 8]


def test_no_draft_without_a_match() -> None:
    assert draft_tokens([1, 2, 3, 4, 5, 6], ngram=3) == []
    assert draft_tokens([1, 2], ngram=3) == []


def saved(n: int) -> SavedSequence:
    return SavedSequence(tuple(range(n)), b"x" * 100 * n)


def test_cache_evicts_least_recently_used_within_its_byte_budget() -> None:
    cache = KvStateCache(max_bytes=2 * saved(10).size)
    cache.put("a", saved(10))
    cache.put("b", saved(10))
    assert cache.take("a") is not None
    cache.put("a", saved(10))  # "a" is now the most recent
    cache.put("c", saved(10))
    assert "b" not in cache
    assert {"a", "c"} <= {key for key in ("a", "b", "c") if key in cache}
    assert cache.bytes_held <= cache.max_bytes


def test_cache_skips_a_state_larger_than_its_budget() -> None:
    cache = KvStateCache(max_bytes=100)
    cache.put("big", saved(10))
    assert len(cache) == 0
    assert cache.bytes_held == 0
