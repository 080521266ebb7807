"""SQLite in WAL mode, shared by all worker processes of one host through the file.

Every query runs off the event loop: writes in the worker's writer process (sqlite_writer.py,
driven by WriterProcess here), reads on a reader thread (sqlite_thread.py), each with its own
connection. A batch of reads costs one hop to the reader thread, and SQLite
builds each list's JSON itself in one statement, so the thread takes the GIL back once per
list rather than once per row. Whole lists are then kept in the worker's ListCache, which
every commit on this host invalidates through the shared SlotVersions (list_cache.py): a
current list is answered on the event loop without a hop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from . import metrics
from .list_cache import MISS, ListCache, SlotVersions
from .settings import Settings
from .sqlite_thread import SQLiteThread
from .storage import (
    MAX_READ_BATCH,
    NotStoredError,
    Page,
    RolledBackError,
    Storage,
    StorageUnavailableError,
    keyed_answer,
)
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

log = logging.getLogger("comments.storage")

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


def list_versions_path(settings: Settings) -> Path:
    """The workers' shared SlotVersions, next to the database they describe."""
    return settings.data_dir / "comments.list-versions"


def migrate_sqlite(settings: Settings) -> list[int]:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite_connect(settings)
    except (OSError, sqlite3.Error) as exc:
        raise NotStoredError(f"cannot open {settings.sqlite_path}: {exc}") from exc
    applied: list[int] = []
    try:
        # Persistent in the file; taking it needs a short exclusive lock, retried if busy.
        retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"), settings.db_timeout)
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


def retry_busy(action: Callable[[], T], timeout: float, pause: float = 0.05) -> T:
    """action() again every `pause` seconds while SQLite says the database is locked, for up
    to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)


_LENGTH = struct.Struct(">I")


def frame(message: Any) -> bytes:
    body = orjson.dumps(message)
    return _LENGTH.pack(len(body)) + body


def unframe(buffer: bytearray) -> Iterator[Any]:
    """The complete messages at the start of buffer, removed from it."""
    start = 0
    while len(buffer) - start >= 4:
        (length,) = _LENGTH.unpack_from(buffer, start)
        if len(buffer) - start - 4 < length:
            break
        yield orjson.loads(buffer[start + 4 : start + 4 + length])
        start += 4 + length
    del buffer[:start]


class WriterProcess:
    """The worker's end of its writer process (sqlite_writer.py), started again if it exits."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pipe: _WriterPipe | None = None
        self._starting = asyncio.Lock()

    @property
    def pending(self) -> int:
        return self._pipe.pending if self._pipe is not None else 0

    @property
    def pid(self) -> int | None:
        return self._pipe.pid if self._pipe is not None and not self._pipe.gone else None

    async def send(self, *request: Any) -> Any:
        """The writer's answer to one request (see sqlite_writer.py for the messages)."""
        if self._pipe is None or self._pipe.gone:
            await self.start()
        assert self._pipe is not None
        return await self._pipe.send(list(request))

    async def start(self) -> None:
        async with self._starting:
            if self._pipe is not None and not self._pipe.gone:
                return
            # The worker's settings; not its metrics directory: the writer records none.
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
            env.update(
                DATA_DIR=str(self._settings.data_dir),
                DB_TIMEOUT=str(self._settings.db_timeout),
                SQLITE_SYNCHRONOUS=self._settings.sqlite_synchronous,
                LOG_LEVEL=self._settings.log_level,
            )
            root = str(Path(__file__).resolve().parent.parent)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
            pipe = _WriterPipe()
            await asyncio.get_running_loop().subprocess_exec(
                lambda: pipe,
                sys.executable,
                "-m",
                "comments.sqlite_writer",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,
                env=env,
            )
            self._pipe = pipe

    async def stop(self) -> None:
        """Let the writer answer what it was sent, then wait for it to exit."""
        if self._pipe is not None:
            await self._pipe.close()


class _WriterPipe(asyncio.SubprocessProtocol):
    """One writer process: requests on its stdin, answers on its stdout."""

    def __init__(self) -> None:
        self.gone = False  # its stdout ended: it exited
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._buffer = bytearray()
        self._ended = asyncio.get_running_loop().create_future()

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def pid(self) -> int | None:
        return self._transport.get_pid() if self._transport is not None else None

    def send(self, request: list[Any]) -> asyncio.Future[Any]:
        assert self._stdin is not None
        self._next += 1
        future = asyncio.get_running_loop().create_future()
        self._pending[self._next] = future
        self._stdin.write(frame([self._next, *request]))
        return future

    async def close(self) -> None:
        if self._stdin is not None and not self.gone:
            self._stdin.close()  # the writer answers what it read, then exits
        await self._ended

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._stdin = self._transport.get_pipe_transport(0)  # type: ignore[union-attr,assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._buffer += data
        for answers in unframe(self._buffer):
            for n, ok, value in answers:
                future = self._pending.pop(n)
                if future.done():  # its request was cancelled (client gone)
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(RolledBackError(f"sqlite writer failed: {value}"))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd != 1:
            return
        # Its stdout ended, so every answer it wrote has arrived. What is still pending was
        # sent, so perhaps committed: the outcome is unknown.
        self.gone = True
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(StorageUnavailableError("the sqlite writer exited"))
        if not self._ended.done():
            self._ended.set_result(None)

    def process_exited(self) -> None:
        assert self._transport is not None
        code = self._transport.get_returncode()
        if code:
            log.error("sqlite writer exited", extra={"exit_code": code})
        self._transport.close()


class SQLiteStorage(Storage):
    backend = "sqlite"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # One writer (SQLite has one at a time anyway) and one reader per worker.
        self._writer = WriterProcess(settings)
        self._reader = SQLiteThread(
            "reader", functools.partial(sqlite_connect, settings), MAX_READ_BATCH
        )
        self._versions: SlotVersions | None = None
        self._cache: ListCache | None = None

    async def _open(self) -> None:
        try:
            self._versions = SlotVersions(list_versions_path(self.settings))
        except OSError as exc:
            raise NotStoredError(f"cannot open the list versions file: {exc}") from exc
        if self.settings.list_cache_mb:
            self._cache = ListCache(self._versions, self.settings.list_cache_mb << 20)
        self._reader.start()
        await self.ping()
        await self._writer.start()

    async def _close(self) -> None:
        await self._writer.stop()  # runs the writes still queued first
        await self._reader.stop()
        self._cache = None
        if self._versions is not None:
            self._versions.close()

    @property
    def pending_writes(self) -> int:
        return self._writer.pending

    async def _add(self, comment: NewComment) -> None:
        await self._writer.send("add", *comment)

    async def _add_keyed(self, comment: NewComment, key: str, digest: str) -> str:
        now = time.time()
        cutoff = now - self.settings.idempotency_window
        first = await self._writer.send("keyed", *comment, key, digest, now, cutoff)
        return keyed_answer(comment.content_id, key, digest, first)

    async def _purge_keys(self, before: float) -> None:
        await self._writer.send("purge", before)

    async def list_json(self, content_id: str) -> bytes | None:
        if self._cache is not None:
            cached = self._cache.get(content_id)
            if cached is not MISS:
                metrics.list_cache_hit()
                return cached  # type: ignore[return-value]
        version, read_at, body = await self._reader.submit(self._read_lists, content_id)
        if self._cache is not None:  # filled on the loop: the cache is not thread-safe
            self._cache.put(content_id, version, read_at, body)
        return body

    def _read_lists(
        self, conn: sqlite3.Connection, content_ids: list[str]
    ) -> list[tuple[int, float, bytes | None]]:
        """On the reader thread: each list with the slot version seen before any query, so
        a commit marked later invalidates it, and the time of the read."""
        versions = self._versions
        assert versions is not None
        seen = {cid: versions.version(versions.slot(cid)) for cid in dict.fromkeys(content_ids)}
        read_at = time.monotonic()
        bodies: dict[str, bytes | None] = {}
        for content_id in seen:
            body, count = conn.execute(SQLITE_LIST, (content_id,)).fetchone()
            bodies[content_id] = body if count else None
        return [(seen[cid], read_at, bodies[cid]) for cid in content_ids]

    async def page(self, content_id: str, after: int, limit: int) -> Page:
        def read(conn: sqlite3.Connection) -> Page:
            body, last, more, exists = conn.execute(
                SQLITE_PAGE, (content_id, after, limit)
            ).fetchone()
            return Page(body, last, bool(more), bool(exists))

        return await self._reader.call(read)

    async def ping(self) -> None:
        await self._reader.call(
            lambda conn: conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        )
