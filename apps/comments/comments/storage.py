"""Comment storage: SQLite (default) or PostgreSQL behind one small interface.

Design notes:

* Writes go through a per-process group-commit queue: every comment that arrives while a
  commit is running is written by the next commit, in one transaction. PostgreSQL's queue
  is a Batcher on the event loop (BatchedStorage); SQLite's is the pipe to the worker's
  writer process (sqlite_writer.py). A request is acknowledged only after its
  transaction committed. The queue is bounded: when it is full a write is refused at once
  (503) instead of waiting without limit.
* A failed write is reported as one of two errors: NotStoredError when the database surely
  stored nothing (RolledBackError when it ran the batch and rolled it back: then its
  comments are retried one by one, so one bad comment does not fail the others), or
  StorageUnavailableError when the outcome is unknown
  (the connection died around the commit). A client that must not duplicate a comment sends
  an Idempotency-Key; a keyed write is stored at most once within the key's window.
* Whole-list reads are batched the same way: concurrent reads share one query, which starts
  after each of them arrived, so a read still sees every write acknowledged before it, from
  any process or pod. The database builds the JSON list itself, so no row becomes a Python
  object and nothing is serialised on the event loop. On SQLite each worker also keeps the
  lists it read while no commit on the host touched them (list_cache.py).
* Comments are listed in id order. Ids are assigned under a lock held until commit (SQLite's
  single writer lock; a per-content_id advisory lock in PostgreSQL), so the ids of one
  content_id become visible in increasing order and a pagination cursor never skips a
  comment that commits later. Listing is an index range scan on (content_id, id).
* Schema changes are numbered migrations recorded in schema_migrations and applied at start
  under a lock, so several processes or pods starting together apply each one exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

from .settings import Settings
from .validation import NewComment

log = logging.getLogger("comments.storage")

# Comments taken by one group commit, and whole lists read by one batched query.
MAX_WRITE_BATCH = 500
MAX_READ_BATCH = 200
# How often each worker deletes idempotency keys older than the window.
KEY_PURGE_SECONDS = 600.0


class StorageUnavailableError(Exception):
    """The database could not be reached or failed; a write may or may not be stored."""


class NotStoredError(StorageUnavailableError):
    """The database failed and surely stored nothing of this operation."""


class RolledBackError(NotStoredError):
    """The database ran the operation and rolled it back: it may succeed in smaller parts."""


class OverloadedError(NotStoredError):
    """The write queue is full; nothing was stored."""


class KeyReusedError(Exception):
    """An Idempotency-Key already stored a different comment."""


def keyed_answer(comment_id: str, key: str, digest: str, first: Any) -> str:
    """The answer to a keyed add: the comment's own id when this call stored it (`first` is
    None), else the first call's answer, if it stored the same comment (`first` holds that
    call's digest and answer)."""
    if first is None:
        return comment_id
    if first[0] != digest:
        raise KeyReusedError(key)
    return first[1]


class Page(NamedTuple):
    body: bytes  # JSON array of {"email", "comment"}
    last_id: int | None  # id of the page's last comment
    more: bool  # comments follow the page
    exists: bool  # the content_id has any comment at all


def comment_digest(comment: NewComment) -> str:
    """Fingerprint of a comment, stored with its Idempotency-Key to recognise a true retry."""
    return hashlib.sha256(orjson.dumps(list(comment))).hexdigest()


Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Runs concurrent submit() calls together: at most `concurrency` runs at a time, each
    taking everything queued (up to max_batch). With no contention an item runs at once, so
    latency is not traded for throughput. `run` returns one result or exception per item."""

    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]],
        concurrency: int,
        max_batch: int,
    ) -> None:
        self._run = run
        self._concurrency = concurrency
        self._max_batch = max_batch
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._active = 0  # runs in progress; changed only between awaits, so no lock needed
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs until done

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._active < self._concurrency:
            self._active += 1
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            # No await between the empty-queue check and this line: a submit() that comes
            # later sees the slot free and starts a new run (no lost wake-up).
            self._active -= 1

    async def drain(self) -> None:
        """Wait until every queued item has run (used at shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Storage:
    """What the HTTP layer needs from a database. Subclasses implement the _underscored
    primitives and queue their own work; the write bound and key purging live here."""

    backend = "none"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._purger: asyncio.Task[None] | None = None

    async def add(self, comment: NewComment, key: str | None = None) -> str:
        """Store one comment; returns the content_id of the stored comment once committed.

        With a key, a retry of the same comment within the window stores nothing new and
        returns the first answer; another comment under the same key is KeyReusedError."""
        if self.pending_writes >= self.settings.write_queue_max:
            raise OverloadedError("write queue full")
        if key is None:
            await self._add(comment)
            return comment.content_id
        return await self._add_keyed(comment, key, comment_digest(comment))

    async def start(self) -> None:
        await self._open()
        self._purger = asyncio.create_task(self._purge_keys_forever())

    async def close(self) -> None:
        """Write what is queued, then close the database (used at shutdown)."""
        if self._purger is not None:
            self._purger.cancel()
        await self._close()

    async def _purge_keys_forever(self) -> None:
        while True:
            await asyncio.sleep(KEY_PURGE_SECONDS)
            try:
                await self._purge_keys(time.time() - self.settings.idempotency_window)
            except StorageUnavailableError as exc:
                log.warning("idempotency key purge failed", extra={"error": str(exc)})

    # Backend primitives -----------------------------------------------------------------

    @property
    def pending_writes(self) -> int:
        """Writes waiting for their commit in this worker."""
        raise NotImplementedError

    async def _add(self, comment: NewComment) -> None:
        """Store one comment, grouped with the others that wait for a commit."""
        raise NotImplementedError

    async def _add_keyed(self, comment: NewComment, key: str, digest: str) -> str:
        raise NotImplementedError

    async def list_json(self, content_id: str) -> bytes | None:
        """All comments of content_id as a JSON array, oldest first; None if it has none."""
        raise NotImplementedError

    async def page(self, content_id: str, after: int, limit: int) -> Page:
        """Up to limit comments of content_id with id > after, oldest first."""
        raise NotImplementedError

    async def ping(self) -> None:
        """Raise StorageUnavailableError unless the database answers a trivial query."""
        raise NotImplementedError

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        """Write what is queued, then close the connections."""
        raise NotImplementedError

    async def _purge_keys(self, before: float) -> None:
        raise NotImplementedError


class BatchedStorage(Storage):
    """A Storage on an asyncio driver: batches run as tasks on the event loop (Batcher)."""

    def __init__(self, settings: Settings, write_concurrency: int, read_concurrency: int) -> None:
        super().__init__(settings)
        self._writes: Batcher[NewComment, None] = Batcher(
            self._write_group, write_concurrency, MAX_WRITE_BATCH
        )
        self._reads: Batcher[str, bytes | None] = Batcher(
            self._read_group, read_concurrency, MAX_READ_BATCH
        )

    @property
    def pending_writes(self) -> int:
        return self._writes.pending

    async def _add(self, comment: NewComment) -> None:
        await self._writes.submit(comment)

    async def list_json(self, content_id: str) -> bytes | None:
        return await self._reads.submit(content_id)

    async def close(self) -> None:
        await self._writes.drain()
        await self._reads.drain()
        await super().close()

    async def _write_group(self, comments: list[NewComment]) -> list[BaseException | None]:
        try:
            await self._write_batch(comments)
            return [None] * len(comments)
        except RolledBackError as exc:
            if len(comments) == 1:
                return [exc]
            log.warning("batch write failed, retrying one by one", extra={"error": str(exc)})
        results: list[BaseException | None] = []
        for comment in comments:
            try:
                await self._write_batch([comment])
                results.append(None)
            except StorageUnavailableError as exc:
                results.append(exc)
        return results

    async def _read_group(self, content_ids: list[str]) -> list[bytes | None]:
        unique = list(dict.fromkeys(content_ids))
        bodies = dict(zip(unique, await self._read_lists(unique), strict=True))
        return [bodies[content_id] for content_id in content_ids]

    async def _write_batch(self, comments: Sequence[NewComment]) -> None:
        """Write comments in one transaction, in order (NotStoredError if rolled back)."""
        raise NotImplementedError

    async def _read_lists(self, content_ids: list[str]) -> list[bytes | None]:
        raise NotImplementedError


def create_storage(settings: Settings) -> Storage:
    if settings.backend == "postgres":
        from .postgres_store import PostgresStorage

        return PostgresStorage(settings)
    from .sqlite_store import SQLiteStorage

    return SQLiteStorage(settings)


def migrate(settings: Settings) -> list[int]:
    """Create or upgrade the schema; return the versions applied by this call.

    Waits up to DB_STARTUP_TIMEOUT for the database (it may start after us on a cluster).
    """
    deadline = time.monotonic() + settings.db_startup_timeout
    while True:
        try:
            if settings.backend == "postgres":
                from .postgres_store import migrate_postgres

                return asyncio.run(migrate_postgres(settings))
            from .sqlite_store import migrate_sqlite

            return migrate_sqlite(settings)
        except StorageUnavailableError as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("database not ready, retrying", extra={"error": str(exc)})
            time.sleep(1.0)
