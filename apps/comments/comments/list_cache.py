"""Whole lists answered from each worker's memory, never stale after an acknowledged write.

SQLite only: its comments live in one file on one host, shared by every worker process there,
so the workers can also share a small memory-mapped file next to it (`SlotVersions`). Content
ids are hashed into its slots. A worker that commits comments writes the id of its last
inserted row into their slots *after* the commit and *before* it answers: a value written by
no other commit, since ids are never reused. A list read notes its slot's value before its
query and caches the result under that value; a request is answered from the cache only while
the slot still holds it, that is, while no commit has touched the slot since that read began.
So a list served by any worker after a write was acknowledged by any worker includes it.

No value is ever read, changed and written back, so two writers need no lock between them:
each stores a whole aligned 64-bit word (one machine store on x86-64 and arm64) and a reader
sees one value or the other, never a mix. Another slot sharing the hash only costs a re-read.

A writer killed between its commit and marking the slot never answered, so nobody was told
the comment exists; entries older than MAX_AGE_SECONDS are re-read anyway, which bounds how
long such a comment stays out of the other workers' caches.
"""

from __future__ import annotations

import mmap
import os
import secrets
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

SLOTS = 1 << 16  # 512 KiB of 64-bit versions
MAX_AGE_SECONDS = 5.0
ENTRY_OVERHEAD = 200  # bytes counted per entry besides its body (key, tuple, dict slot)


class SlotVersions:
    """A shared array of 64-bit versions in a file, one slot per hash of a content id."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = SLOTS * 8
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # zero-filled; never shrunk under another process
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._slots = memoryview(self._map).cast("Q")

    @staticmethod
    def slot(content_id: str) -> int:
        # crc32, not hash(): every process must pick the same slot.
        return zlib.crc32(content_id.encode("utf-8", "surrogatepass")) % SLOTS

    def version(self, slot: int) -> int:
        return self._slots[slot]

    def mark(self, content_ids: Iterable[str], row_id: int | None = None) -> None:
        """Record a commit: `row_id` is its last inserted row. Without one (a keyed retry
        answered from its key, whose first commit may have died before its mark) a random
        value with the top bit set, which no row id has and no other mark repeats."""
        value = row_id if row_id is not None else secrets.randbits(63) | 1 << 63
        for slot in {self.slot(content_id) for content_id in content_ids}:
            self._slots[slot] = value

    def close(self) -> None:
        self._slots.release()
        self._map.close()


MISS = object()  # get() found nothing usable; None is a cached "no comments"


class ListCache:
    """Least recently used lists of one worker, bounded in bytes; used from the event loop."""

    def __init__(self, versions: SlotVersions, max_bytes: int) -> None:
        self._versions = versions
        self._max_bytes = max_bytes
        self._size = 0
        # content_id -> (its slot, the slot's version when its read began, time of that read,
        # JSON or None); the slot is hashed once, when the list is kept, not on every hit
        self._entries: OrderedDict[str, tuple[int, int, float, bytes | None]] = OrderedDict()

    def get(self, content_id: str) -> bytes | object | None:
        """The cached list, or MISS unless it is still current."""
        entry = self._entries.get(content_id)
        if entry is None:
            return MISS
        slot, version, read_at, body = entry
        if version != self._versions.version(slot) or time.monotonic() - read_at > MAX_AGE_SECONDS:
            self._drop(content_id)
            return MISS
        self._entries.move_to_end(content_id)
        return body

    def put(self, content_id: str, version: int, read_at: float, body: bytes | None) -> None:
        """Keep the list a read returned; `version` and `read_at` were taken before it ran."""
        self._drop(content_id)
        cost = _cost(body)
        if cost > self._max_bytes // 4:  # one huge list must not push out all the others
            return
        while self._entries and self._size + cost > self._max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[content_id] = (SlotVersions.slot(content_id), version, read_at, body)
        self._size += cost

    def _drop(self, content_id: str) -> None:
        entry = self._entries.pop(content_id, None)
        if entry is not None:
            self._size -= _cost(entry[3])

    @property
    def size(self) -> int:
        return self._size


def _cost(body: bytes | None) -> int:
    return ENTRY_OVERHEAD + (len(body) if body is not None else 0)
