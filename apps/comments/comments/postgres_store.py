"""PostgreSQL through an asyncpg connection pool (one pool per worker process).

Every failure becomes a StorageUnavailableError (503), whatever the step: acquiring a
connection (pool exhausted, server down), running the statement, committing, or releasing
the connection afterwards. A failure after the statement completed does not fail it: the
write is committed, so the client gets its 200. A broken connection is closed on its own;
the rest of the pool is kept (expiring every connection on one error would make all
workers reconnect at once to a database that is already slow).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from . import metrics
from .settings import Settings
from .storage import (
    BatchedStorage,
    NotStoredError,
    Page,
    RolledBackError,
    StorageUnavailableError,
    keyed_answer,
)
from .validation import NewComment

log = logging.getLogger("comments.storage")

# Key of the advisory lock that serialises migrations ("comments" as a 64-bit integer).
PG_MIGRATION_LOCK = int.from_bytes(b"comments", "big") >> 1
# How often each worker records its connection pool's size for /metrics.
POOL_SAMPLE_SECONDS = 5.0
# Idle connections older than this are closed by the pool.
POOL_IDLE_SECONDS = 300.0
# SQLSTATE classes after which a write's outcome is unknown: connection exception,
# operator intervention (server shutdown), system error, internal error.
AMBIGUOUS_SQLSTATES = ("08", "57P", "58", "XX")

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
    (
        2,
        "idempotency keys of recent writes",
        [
            """CREATE TABLE idempotency_keys (
                key TEXT PRIMARY KEY,
                digest TEXT NOT NULL,
                content_id TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )""",
            "CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at)",
        ],
    ),
]

PG_INSERT = "SELECT comments_insert($1::text[], $2::text[], $3::text[])"
# The same compact JSON the service would write; built by the server, rows never reach Python.
PG_LIST_MANY = """
SELECT (SELECT '[' || string_agg('{"email":' || to_json(c.email)::text
                                 || ',"comment":' || to_json(c.comment)::text || '}',
                                 ',' ORDER BY c.id) || ']'
        FROM comments c WHERE c.content_id = k.id)
FROM unnest($1::text[]) WITH ORDINALITY AS k(id, n) ORDER BY k.n
"""
PG_PAGE = """
WITH c AS (SELECT id, email, comment FROM comments
           WHERE content_id = $1 AND id > $2 ORDER BY id LIMIT $3)
SELECT '[' || coalesce(string_agg('{"email":' || to_json(c.email)::text
                                  || ',"comment":' || to_json(c.comment)::text || '}',
                                  ',' ORDER BY c.id), '') || ']',
       max(c.id),
       EXISTS(SELECT 1 FROM comments WHERE content_id = $1 AND id > (SELECT max(id) FROM c)),
       EXISTS(SELECT 1 FROM comments WHERE content_id = $1)
FROM c
"""
PG_CLAIM_KEY = (
    "INSERT INTO idempotency_keys (key, digest, content_id) VALUES ($1, $2, $3)"
    " ON CONFLICT (key) DO UPDATE SET digest = excluded.digest,"
    " content_id = excluded.content_id, created_at = now()"
    " WHERE idempotency_keys.created_at < now() - make_interval(secs => $4) RETURNING 1"
)
PG_GET_KEY = "SELECT digest, content_id FROM idempotency_keys WHERE key = $1"
PG_PURGE_KEYS = "DELETE FROM idempotency_keys WHERE created_at < to_timestamp($1)"

T = TypeVar("T")


def classify(exc: BaseException, what: str) -> StorageUnavailableError:
    """The storage error for a driver failure: rolled back, or outcome unknown."""
    import asyncpg

    reason = f"PostgreSQL {what} failed: {type(exc).__name__}"
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or "XX"
        if not state.startswith(AMBIGUOUS_SQLSTATES):
            return RolledBackError(f"{reason} ({state})")
    return StorageUnavailableError(reason)


async def migrate_postgres(settings: Settings) -> list[int]:
    import asyncpg

    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.db_timeout)
    except Exception as exc:
        reason = type(exc).__name__  # not str(exc): never risk echoing the URL
        raise NotStoredError(f"cannot connect to PostgreSQL: {reason}") from exc
    applied: list[int] = []
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PG_MIGRATION_LOCK)
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
    except Exception as exc:
        raise NotStoredError(f"PostgreSQL migration failed: {exc}") from exc
    finally:
        await conn.close()
    return applied


async def _keep_session(conn: Any) -> None:
    """Pool reset on release. asyncpg still rolls back an open transaction first; its
    default reset query (RESET ALL, UNLISTEN *, advisory unlock) is skipped because no
    statement of ours leaves session state behind (advisory locks are transaction-scoped),
    and it cost a round trip and a transaction per batch."""


class PostgresStorage(BatchedStorage):
    backend = "postgres"

    def __init__(self, settings: Settings) -> None:
        # Two runs in flight per worker: one can wait for its commit's fsync (or its reads)
        # while the next batch is sent; PostgreSQL merges concurrent fsyncs itself.
        super().__init__(settings, write_concurrency=2, read_concurrency=2)
        self._pool: Any = None
        self._pool_sampler: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        import asyncpg

        # min_size=0: a worker starts (and reports not-ready) even while the database is
        # down, instead of crash-looping; connections are opened on demand.
        self._pool = await asyncpg.create_pool(
            self.settings.database_url,
            min_size=0,
            max_size=self.settings.db_pool_size,
            timeout=self.settings.db_timeout,
            command_timeout=self.settings.db_timeout,
            max_inactive_connection_lifetime=POOL_IDLE_SECONDS,
            reset=_keep_session,
        )
        await self._warm_up(min(2, self.settings.db_pool_size))
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
                held.append(await self._pool.acquire(timeout=self.settings.db_timeout))
        except Exception as exc:
            log.warning("database not reachable at worker start", extra={"error": repr(exc)})
        finally:
            for conn in held:
                await self._release(conn)

    async def _close(self) -> None:
        if self._pool_sampler is not None:
            self._pool_sampler.cancel()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self.settings.db_timeout)
            except Exception:
                self._pool.terminate()

    async def _release(self, conn: Any) -> None:
        """Give a connection back; one that cannot be reset is closed, never raised."""
        try:
            await self._pool.release(conn, timeout=self.settings.db_timeout)
        except Exception as exc:
            log.warning("closing a connection that failed to reset", extra={"error": repr(exc)})
            # The pool may have taken it back already, then terminate() refuses: either way
            # the connection is gone and the caller's work stands.
            with contextlib.suppress(Exception):
                conn.terminate()

    async def _with(self, what: str, work: Callable[[Any], Awaitable[T]], attempts: int = 1) -> T:
        """work(connection) on a pooled connection. Reads pass attempts=2: a connection the
        server closed while idle (restart, failover) fails once and is replaced."""
        for attempt in range(attempts):
            try:
                conn = await self._pool.acquire(timeout=self.settings.db_timeout)
            except Exception as exc:
                raise NotStoredError(f"no PostgreSQL connection: {type(exc).__name__}") from exc
            try:
                return await work(conn)
            except Exception as exc:
                error = classify(exc, what)
                retry = not isinstance(exc, asyncio.TimeoutError) and attempt + 1 < attempts
                if not retry:
                    raise error from exc
            finally:
                await self._release(conn)
        raise AssertionError("unreachable")

    async def _write_batch(self, comments: Sequence[NewComment]) -> None:
        content_ids, emails, bodies = zip(*comments, strict=True)
        await self._with("write", lambda c: c.execute(PG_INSERT, content_ids, emails, bodies))

    async def _add_keyed(self, comment: NewComment, key: str, digest: str) -> str:
        window = float(self.settings.idempotency_window)

        async def write(conn: Any) -> Any:
            async with conn.transaction():
                if await conn.fetchval(PG_CLAIM_KEY, key, digest, comment.content_id, window):
                    await conn.execute(PG_INSERT, *([part] for part in comment))
                    return None
                return await conn.fetchrow(PG_GET_KEY, key)

        first = await self._with("write", write)
        return keyed_answer(comment.content_id, key, digest, first)

    async def _purge_keys(self, before: float) -> None:
        await self._with("purge", lambda c: c.execute(PG_PURGE_KEYS, before))

    async def _read_lists(self, content_ids: list[str]) -> list[bytes | None]:
        rows = await self._with("read", lambda c: c.fetch(PG_LIST_MANY, content_ids), 2)
        return [None if row[0] is None else row[0].encode() for row in rows]

    async def page(self, content_id: str, after: int, limit: int) -> Page:
        row = await self._with("read", lambda c: c.fetchrow(PG_PAGE, content_id, after, limit), 2)
        return Page(row[0].encode(), row[1], row[2], row[3])

    async def ping(self) -> None:
        await self._with("ping", lambda c: c.fetchval("SELECT count(*) FROM schema_migrations"))
