"""Draft tokens by looking up the context: code repeats itself, so what followed the same tokens often follows again.

The model verifies a draft in one batch and keeps the longest prefix it agrees with (prompt-lookup decoding), so the
output is exactly what greedy decoding gives, only sooner.
"""

from __future__ import annotations

from collections.abc import Sequence


def draft_tokens(context: Sequence[int], ngram: int = 3, max_draft: int = 6, search_last: int = 2048) -> list[int]:
    """The tokens that followed the most recent earlier occurrence of the context's last `ngram` tokens."""
    n = len(context)
    if n <= ngram:
        return []
    tail = list(context[n - ngram :])
    lowest = max(0, n - search_last)
    first = tail[0]
    for start in range(n - ngram - 1, lowest - 1, -1):
        if context[start] == first and list(context[start : start + ngram]) == tail:
            follow = start + ngram
            return list(context[follow : min(follow + max_draft, n)])
    return []
