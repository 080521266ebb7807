"""Comment storage: SQLite (default) or PostgreSQL behind one small interface.

Design notes:

* Writes go through a per-process group-commit queue (WriteBatcher): every comment that
  arrives while a commit is running is written by the next commit, in one transaction. A
  request is acknowledged only after its transaction committed, so nothing acknowledged is
  lost, and under load the number of commits (and lock hand-offs between worker processes)
  stays small.
* Comments are listed in id order. Ids are assigned when the row is written, under a lock
  that is held until commit (SQLite's single writer lock; a per-content_id advisory lock in
  PostgreSQL), so the ids of one content_id become visible in increasing order and a
  pagination cursor (the last id seen) never skips a comment that commits later.
* Listing is an index range scan on (content_id, id): its cost depends on the size of the
  list, not on the size of the table.
* Schema changes are numbered migrations recorded in schema_migrations and applied at start
  under a lock, so several processes or pods starting together apply each one exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import orjson

from . import metrics
from .settings import Settings
from .validation import NewComment

log = logging.getLogger("comments.storage")

Row = tuple[int, str, str]  # (id, email, comment)


class StorageUnavailableError(Exception):
    """The database could not be reached or failed; the request may be retried later."""


# --------------------------------------------------------------------------- group commit


class WriteBatcher:
    """Group commit: concurrent add() calls share transactions, acknowledged after commit.

    At most `concurrency` flushes run at a time; each takes everything queued (up to
    max_batch). With no contention a comment is written at once, so latency is not traded
    for throughput.
    """

    def __init__(
        self,
        write: Callable[[Sequence[NewComment]], Awaitable[None]],
        concurrency: int = 1,
        max_batch: int = 500,
    ) -> None:
        self._write = write
        self._concurrency = concurrency
        self._max_batch = max_batch
        self._queue: list[tuple[NewComment, asyncio.Future[None]]] = []
        self._active = 0  # flushes running; changed only between awaits, so no lock needed
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs until done

    async def add(self, comment: NewComment) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((comment, future))
        if self._active < self._concurrency:
            self._active += 1
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    await self._write([comment for comment, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            # No await between the empty-queue check and this line: an add() that comes
            # later sees the slot free and starts a new flush (no lost wake-up).
            self._active -= 1

    async def drain(self) -> None:
        """Wait until every queued comment has been written (used at shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Storage:
    """What the HTTP layer needs from a database."""

    backend = "none"

    def __init__(self, concurrency: int) -> None:
        self._batcher = WriteBatcher(self._write_batch, concurrency=concurrency)

    async def add(self, comment: NewComment) -> None:
        """Store one comment; returns once it is committed."""
        await self._batcher.add(comment)

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def _write_batch(self, comments: Sequence[NewComment]) -> None:
        raise NotImplementedError

    async def list_all(self, content_id: str) -> list[Row]:
        """All comments of content_id, oldest first."""
        raise NotImplementedError

    async def last_id(self, content_id: str) -> int | None:
        """Id of the newest comment of content_id (None if it has none).

        Comments are never changed or deleted and the ids of one content_id become visible
        in increasing order, so this id identifies the whole list: the same last id means
        the same list (used by the list cache).
        """
        raise NotImplementedError

    async def list_page(self, content_id: str, after: int, limit: int) -> list[Row]:
        """Up to limit comments of content_id with id > after, oldest first."""
        raise NotImplementedError

    async def exists(self, content_id: str) -> bool:
        raise NotImplementedError

    async def ping(self) -> None:
        """Raise StorageUnavailableError unless the database answers a trivial query."""
        raise NotImplementedError


def create_storage(settings: Settings) -> Storage:
    if settings.backend == "postgres":
        return PostgresStorage(settings)
    return SQLiteStorage(settings)


def migrate(settings: Settings) -> list[int]:
    """Create or upgrade the schema; return the versions applied by this call.

    Waits up to DB_STARTUP_TIMEOUT for the database (it may start after us on a cluster).
    """
    deadline = time.monotonic() + settings.db_startup_timeout
    while True:
        try:
            if settings.backend == "postgres":
                return asyncio.run(_migrate_postgres(settings))
            return _migrate_sqlite(settings)
        except StorageUnavailableError as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("database not ready, retrying", extra={"error": str(exc)})
            time.sleep(1.0)


# --------------------------------------------------------------------------- SQLite

SQLITE_MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "comments table with a (content_id, id) index",
        [
            """CREATE TABLE comments (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                content_id TEXT NOT NULL,
                email TEXT NOT NULL,
                comment TEXT NOT NULL,
                created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            )""",
            "CREATE INDEX comments_content_id_id ON comments (content_id, id)",
        ],
    ),
]

# Rows arrive as one JSON array of [content_id, email, comment]; ids follow array order.
_SQLITE_INSERT_MANY = (
    "INSERT INTO comments (content_id, email, comment)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]') FROM json_each(?) ORDER BY key"
)
_SQLITE_LIST = "SELECT id, email, comment FROM comments WHERE content_id = ? ORDER BY id"
_SQLITE_LAST = "SELECT max(id) FROM comments WHERE content_id = ?"
_SQLITE_PAGE = (
    "SELECT id, email, comment FROM comments WHERE content_id = ? AND id > ? ORDER BY id LIMIT ?"
)
_SQLITE_EXISTS = "SELECT 1 FROM comments WHERE content_id = ? LIMIT 1"


def _sqlite_connect(settings: Settings) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), waiting for locks up to
    DB_TIMEOUT rather than failing at once when another process writes."""
    conn = sqlite3.connect(
        settings.sqlite_path,
        timeout=settings.db_timeout,
        isolation_level=None,
        check_same_thread=False,
    )
    # WAL: readers never block the writer or each other. synchronous=NORMAL: a commit is in
    # the WAL file before it is acknowledged, so it survives the process being killed; FULL
    # also fsyncs every commit, for power-loss durability (see README.md).
    conn.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
    return conn


def _migrate_sqlite(settings: Settings) -> list[int]:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        conn = _sqlite_connect(settings)
    except (OSError, sqlite3.Error) as exc:
        raise StorageUnavailableError(f"cannot open {settings.sqlite_path}: {exc}") from exc
    applied: list[int] = []
    try:
        # Persistent in the file; taking it needs a short exclusive lock, retried if busy.
        _retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"), settings.db_timeout)
        conn.execute("BEGIN IMMEDIATE")  # one migrating process at a time
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        for version, description, statements in SQLITE_MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ'))",
                (version, description),
            )
            applied.append(version)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StorageUnavailableError(f"sqlite migration failed: {exc}") from exc
    finally:
        conn.close()
    return applied


def _retry_busy(action: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


class SQLiteStorage(Storage):
    """SQLite in WAL mode, shared by all worker processes through the file.

    Reads run on the event loop thread: they are index lookups that never wait for a lock in
    WAL mode, and a thread hop would cost more than the query. Writes may wait for another
    process's write lock, so they run on a dedicated writer thread with its own connection.
    """

    backend = "sqlite"

    def __init__(self, settings: Settings) -> None:
        super().__init__(concurrency=1)  # SQLite has one writer at a time anyway
        self._settings = settings
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    async def start(self) -> None:
        try:
            self._reader = _sqlite_connect(self._settings)
            self._writer = await asyncio.get_running_loop().run_in_executor(
                self._executor, _sqlite_connect, self._settings
            )
        except sqlite3.Error as exc:
            path = self._settings.sqlite_path
            raise StorageUnavailableError(f"cannot open {path}: {exc}") from exc

    async def close(self) -> None:
        await self._batcher.drain()
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.close)
        self._executor.shutdown(wait=True)
        if self._reader is not None:
            self._reader.close()

    def _insert(self, comments: Sequence[NewComment]) -> None:
        conn = self._writer
        assert conn is not None
        # One statement is one (autocommit) transaction and a single sqlite3_step call: the
        # writer thread gives up and retakes the GIL once per batch, not once per row, which
        # under load can each cost up to the interpreter's 5 ms switch interval.
        rows = orjson.dumps([list(comment) for comment in comments])
        try:
            conn.execute(_SQLITE_INSERT_MANY, (rows,))
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"sqlite write failed: {exc}") from exc

    async def _write_batch(self, comments: Sequence[NewComment]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._insert, comments)

    def _query(self, sql: str, params: tuple[object, ...]) -> list:
        assert self._reader is not None
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"sqlite read failed: {exc}") from exc

    async def list_all(self, content_id: str) -> list[Row]:
        return self._query(_SQLITE_LIST, (content_id,))

    async def list_page(self, content_id: str, after: int, limit: int) -> list[Row]:
        return self._query(_SQLITE_PAGE, (content_id, after, limit))

    async def last_id(self, content_id: str) -> int | None:
        return self._query(_SQLITE_LAST, (content_id,))[0][0]

    async def exists(self, content_id: str) -> bool:
        return bool(self._query(_SQLITE_EXISTS, (content_id,)))

    async def ping(self) -> None:
        self._query("SELECT count(*) FROM schema_migrations", ())


# --------------------------------------------------------------------------- PostgreSQL

# Key of the advisory lock that serialises migrations ("comments" as a 64-bit integer).
_PG_MIGRATION_LOCK = int.from_bytes(b"comments", "big") >> 1
# How often each worker records its connection pool's size for /metrics.
POOL_SAMPLE_SECONDS = 5.0

POSTGRES_MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "comments table, (content_id, id) index and the ordered batch insert function",
        [
            """CREATE TABLE comments (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                content_id TEXT NOT NULL,
                email TEXT NOT NULL,
                comment TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )""",
            "CREATE INDEX comments_content_id_id ON comments (content_id, id)",
            # 1668246893 (0x636F6D6D, "comm"): namespace of the per-content_id advisory locks.
            """CREATE FUNCTION comments_insert(content_ids text[], emails text[], bodies text[])
            RETURNS void LANGUAGE plpgsql AS $$
            BEGIN
                -- Writers of the same content_id take turns until commit, so its ids become
                -- visible in increasing order (cursors never skip a later commit). Locks are
                -- taken in a fixed order so two batches cannot deadlock.
                PERFORM pg_advisory_xact_lock(1668246893, h)
                FROM (SELECT DISTINCT hashtext(c) AS h FROM unnest(content_ids) AS c) AS k
                ORDER BY h;
                INSERT INTO comments (content_id, email, comment)
                SELECT c, e, b FROM unnest(content_ids, emails, bodies)
                    WITH ORDINALITY AS t(c, e, b, n)
                ORDER BY n;
            END
            $$""",
        ],
    ),
]

_PG_INSERT = "SELECT comments_insert($1::text[], $2::text[], $3::text[])"
_PG_LIST = "SELECT id, email, comment FROM comments WHERE content_id = $1 ORDER BY id"
_PG_LAST = "SELECT max(id) FROM comments WHERE content_id = $1"
_PG_PAGE = (
    "SELECT id, email, comment FROM comments WHERE content_id = $1 AND id > $2 ORDER BY id LIMIT $3"
)
_PG_EXISTS = "SELECT 1 FROM comments WHERE content_id = $1 LIMIT 1"


def _pg_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


async def _migrate_postgres(settings: Settings) -> list[int]:
    import asyncpg

    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.db_timeout)
    except (*_pg_errors(), ValueError) as exc:
        reason = type(exc).__name__  # not str(exc): never risk echoing the URL
        raise StorageUnavailableError(f"cannot connect to PostgreSQL: {reason}") from exc
    applied: list[int] = []
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, description, statements in POSTGRES_MIGRATIONS:
                if version in done:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                    version,
                    description,
                )
                applied.append(version)
    except _pg_errors() as exc:
        raise StorageUnavailableError(f"PostgreSQL migration failed: {exc}") from exc
    finally:
        await conn.close()
    return applied


class PostgresStorage(Storage):
    """PostgreSQL through an asyncpg connection pool (one pool per worker process)."""

    backend = "postgres"

    def __init__(self, settings: Settings) -> None:
        # Two flushes in flight per worker: one can wait for its commit's fsync while the
        # next batch is sent; PostgreSQL merges concurrent fsyncs itself.
        super().__init__(concurrency=2)
        self._settings = settings
        self._pool = None
        self._pool_sampler: asyncio.Task[None] | None = None
        self._errors = _pg_errors()

    async def start(self) -> None:
        import asyncpg

        # min_size=0: a worker starts (and reports not-ready) even while the database is
        # down, instead of crash-looping; connections are opened on demand.
        self._pool = await asyncpg.create_pool(
            self._settings.database_url,
            min_size=0,
            max_size=self._settings.db_pool_size,
            timeout=self._settings.db_timeout,
            command_timeout=self._settings.db_timeout,
            max_inactive_connection_lifetime=300,
        )
        await self._warm_up(min(2, self._settings.db_pool_size))
        self._pool_sampler = asyncio.create_task(self._sample_pool())

    async def _sample_pool(self) -> None:
        """Keep the pool gauges current off the request path (a scrape reads every worker's)."""
        while True:
            metrics.record_pool(self._pool.get_size(), self._pool.get_idle_size())
            await asyncio.sleep(POOL_SAMPLE_SECONDS)

    async def _warm_up(self, count: int) -> None:
        """Open a few connections now so the first requests do not pay for them."""
        held = []
        try:
            for _ in range(count):
                held.append(await self._pool.acquire(timeout=self._settings.db_timeout))
        except self._errors as exc:
            log.warning("database not reachable at worker start", extra={"error": repr(exc)})
        finally:
            for conn in held:
                await self._pool.release(conn)

    async def close(self) -> None:
        if self._pool_sampler is not None:
            self._pool_sampler.cancel()
        await self._batcher.drain()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self._settings.db_timeout)
            except (TimeoutError, *self._errors):
                self._pool.terminate()

    async def _run(self, method: str, sql: str, *args: object) -> object:
        pool = self._pool
        assert pool is not None
        try:
            async with pool.acquire(timeout=self._settings.db_timeout) as conn:
                return await getattr(conn, method)(sql, *args)
        except self._errors as exc:
            # After a failover or restart every pooled connection may be dead: replace them
            # all on next use instead of failing once per stale connection.
            pool.expire_connections()
            raise StorageUnavailableError(f"PostgreSQL unavailable: {type(exc).__name__}") from exc

    async def _write_batch(self, comments: Sequence[NewComment]) -> None:
        content_ids, emails, bodies = zip(*comments, strict=True)
        await self._run("execute", _PG_INSERT, content_ids, emails, bodies)

    async def list_all(self, content_id: str) -> list[Row]:
        return await self._run("fetch", _PG_LIST, content_id)  # type: ignore[return-value]

    async def list_page(self, content_id: str, after: int, limit: int) -> list[Row]:
        return await self._run("fetch", _PG_PAGE, content_id, after, limit)  # type: ignore[return-value]

    async def last_id(self, content_id: str) -> int | None:
        return await self._run("fetchval", _PG_LAST, content_id)  # type: ignore[return-value]

    async def exists(self, content_id: str) -> bool:
        return await self._run("fetchval", _PG_EXISTS, content_id) is not None

    async def ping(self) -> None:
        await self._run("fetchval", "SELECT count(*) FROM schema_migrations")
