"""SQLite in WAL mode, shared by all worker processes of one host through the file.

Every query runs off the event loop: writes on a writer thread, reads on a reader thread,
each with its own connection. A batch of reads costs one hop to the reader thread, and SQLite
builds each list's JSON itself in one statement, so the thread takes the GIL back once per
list rather than once per row.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import orjson

from .settings import Settings
from .storage import NotStoredError, Page, RolledBackError, Storage, keyed_answer
from .validation import NewComment

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
    (
        2,
        "idempotency keys of recent writes",
        [
            """CREATE TABLE idempotency_keys (
                key TEXT PRIMARY KEY,
                digest TEXT NOT NULL,
                content_id TEXT NOT NULL,
                created_at REAL NOT NULL
            )""",
            "CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at)",
        ],
    ),
]

# Rows arrive as one JSON array of [content_id, email, comment]; ids follow array order.
SQLITE_INSERT_MANY = (
    "INSERT INTO comments (content_id, email, comment)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]') FROM json_each(?) ORDER BY key"
)
# The (content_id, id) index yields the rows in id order.
SQLITE_LIST = (
    "SELECT CAST(json_group_array(json_object('email', email, 'comment', comment)) AS BLOB),"
    " count(*) FROM (SELECT email, comment FROM comments WHERE content_id = ? ORDER BY id)"
)
SQLITE_PAGE = (
    "WITH p AS (SELECT id, email, comment FROM comments"
    " WHERE content_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3)"
    " SELECT CAST(json_group_array(json_object('email', email, 'comment', comment)) AS BLOB),"
    " max(id),"
    " EXISTS(SELECT 1 FROM comments WHERE content_id = ?1 AND id > (SELECT max(id) FROM p)),"
    " EXISTS(SELECT 1 FROM comments WHERE content_id = ?1) FROM p"
)
# Claims a key unless a live one holds it; an expired key is taken over.
SQLITE_CLAIM_KEY = (
    "INSERT INTO idempotency_keys (key, digest, content_id, created_at) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (key) DO UPDATE SET digest = excluded.digest,"
    " content_id = excluded.content_id, created_at = excluded.created_at"
    " WHERE idempotency_keys.created_at < ?5 RETURNING 1"
)
SQLITE_GET_KEY = "SELECT digest, content_id FROM idempotency_keys WHERE key = ?"
SQLITE_INSERT_ONE = "INSERT INTO comments (content_id, email, comment) VALUES (?, ?, ?)"
SQLITE_PURGE_KEYS = "DELETE FROM idempotency_keys WHERE created_at < ?"

T = TypeVar("T")


def sqlite_connect(settings: Settings) -> sqlite3.Connection:
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


def migrate_sqlite(settings: Settings) -> list[int]:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite_connect(settings)
    except (OSError, sqlite3.Error) as exc:
        raise NotStoredError(f"cannot open {settings.sqlite_path}: {exc}") from exc
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
        raise NotStoredError(f"sqlite migration failed: {exc}") from exc
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
    backend = "sqlite"

    def __init__(self, settings: Settings) -> None:
        # One writer (SQLite has one at a time anyway) and one reader run per worker.
        super().__init__(settings, write_concurrency=1, read_concurrency=1)
        self._connections: dict[str, sqlite3.Connection] = {}
        self._threads = {
            role: ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-{role}")
            for role in ("reader", "writer")
        }

    async def _on(self, role: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run work(connection) on the role's thread; every SQLite error stored nothing."""

        def run() -> T:
            conn = self._connections.get(role)
            if conn is None:
                conn = self._connections[role] = sqlite_connect(self.settings)
            return work(conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads[role], run)
        except sqlite3.Error as exc:
            # A statement or transaction that failed was rolled back as a whole.
            raise RolledBackError(f"sqlite {role} failed: {exc}") from exc

    async def _open(self) -> None:
        await self.ping()

    async def _close(self) -> None:
        for role, pool in self._threads.items():
            conn = self._connections.pop(role, None)
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(pool, conn.close)
            pool.shutdown(wait=True)

    async def _write_batch(self, comments: Sequence[NewComment]) -> None:
        # One statement is one (autocommit) transaction and a single sqlite3_step call: the
        # writer thread gives up and retakes the GIL once per batch, not once per row.
        rows = orjson.dumps([list(comment) for comment in comments])
        await self._on("writer", lambda conn: conn.execute(SQLITE_INSERT_MANY, (rows,)))

    async def _add_keyed(self, comment: NewComment, key: str, digest: str) -> str:
        now = time.time()
        cutoff = now - self.settings.idempotency_window

        def write(conn: sqlite3.Connection) -> tuple[str, str] | None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                claim = (key, digest, comment.content_id, now, cutoff)
                if conn.execute(SQLITE_CLAIM_KEY, claim).fetchone() is not None:
                    conn.execute(SQLITE_INSERT_ONE, tuple(comment))
                    first = None
                else:
                    first = conn.execute(SQLITE_GET_KEY, (key,)).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return first

        first = await self._on("writer", write)
        return keyed_answer(comment.content_id, key, digest, first)

    async def _purge_keys(self, before: float) -> None:
        await self._on("writer", lambda conn: conn.execute(SQLITE_PURGE_KEYS, (before,)))

    async def _read_lists(self, content_ids: list[str]) -> list[bytes | None]:
        def read(conn: sqlite3.Connection) -> list[bytes | None]:
            bodies: list[bytes | None] = []
            for content_id in content_ids:
                body, count = conn.execute(SQLITE_LIST, (content_id,)).fetchone()
                bodies.append(body if count else None)
            return bodies

        return await self._on("reader", read)

    async def page(self, content_id: str, after: int, limit: int) -> Page:
        def read(conn: sqlite3.Connection) -> Page:
            body, last, more, exists = conn.execute(
                SQLITE_PAGE, (content_id, after, limit)
            ).fetchone()
            return Page(body, last, bool(more), bool(exists))

        return await self._on("reader", read)

    async def ping(self) -> None:
        await self._on(
            "reader", lambda conn: conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        )
