"""Saved llama.cpp KV states of documents, so that switching files does not throw the model's cache away."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class SavedSequence:
    """The tokens a KV state was computed for, and the state itself as llama.cpp serialised it."""

    tokens: tuple[int, ...]
    state: bytes

    @property
    def size(self) -> int:
        """Bytes held for this entry."""
        return len(self.state) + 4 * len(self.tokens)


class KvStateCache:
    """A least-recently-used map from document to saved KV state, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, SavedSequence] = OrderedDict()
        self._bytes = 0

    @property
    def bytes_held(self) -> int:
        """Bytes held by all saved states."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def put(self, key: str, saved: SavedSequence) -> None:
        """Keep `saved` for `key`, evicting the least recently used entries while over budget."""
        self.drop(key)
        if saved.size > self.max_bytes:
            return
        self._entries[key] = saved
        self._bytes += saved.size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def take(self, key: str) -> SavedSequence | None:
        """Remove and return the state saved for `key`; it is put back when the document is left again."""
        saved = self._entries.pop(key, None)
        if saved is not None:
            self._bytes -= saved.size
        return saved

    def drop(self, key: str) -> None:
        """Forget the state saved for `key`, if any."""
        self.take(key)
