"""A per-worker cache of serialized full lists, for content_ids with many comments.

Building a long list is the most expensive request (a 1,000-comment list costs ~1.5 ms of
CPU, almost all of it turning rows into Python objects). Comments are never changed or
deleted, and the ids of one content_id become visible in increasing order, so the id of
the newest comment identifies the whole list: a cached body is served only after a cheap
`max(id)` index lookup returns the id it was built at. A write from any worker or pod
changes that id, so a stale body is never served.
"""

from __future__ import annotations

from collections import OrderedDict

LIST_CACHE_MIN_ITEMS = 100  # shorter lists are cheap to build; caching them would only churn


class ListCache:
    """Least-recently-used map content_id -> (last id, JSON body), bounded in bytes."""

    def __init__(self, max_bytes: int, min_items: int = LIST_CACHE_MIN_ITEMS) -> None:
        self._max_bytes = max_bytes
        self._min_items = min_items
        self._entries: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, content_id: str) -> tuple[int, bytes] | None:
        entry = self._entries.get(content_id)
        if entry is not None:
            self._entries.move_to_end(content_id)
        return entry

    def put(self, content_id: str, last_id: int, count: int, body: bytes) -> None:
        if count < self._min_items or len(body) > self._max_bytes:
            return
        old = self._entries.pop(content_id, None)
        if old is not None:
            self._bytes -= len(old[1])
        self._entries[content_id] = (last_id, body)
        self._bytes += len(body)
        while self._bytes > self._max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)
