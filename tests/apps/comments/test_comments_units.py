"""Unit tests of the pieces that need no server: group commit, settings, validation, the
list cache."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from comments import logs, metrics
from comments.list_cache import ENTRY_OVERHEAD, MAX_AGE_SECONDS, MISS, ListCache, SlotVersions
from comments.logs import AccessLog, utc_timestamp
from comments.settings import Settings, SettingsError, redact_url
from comments.sqlite_store import SQLiteStorage, frame, unframe
from comments.storage import (
    BatchedStorage,
    Batcher,
    NotStoredError,
    OverloadedError,
    RolledBackError,
    Storage,
    StorageUnavailableError,
    migrate,
)
from comments.validation import NewComment, normalise_content_id, parse_new_comment
from prometheus_client import REGISTRY, CollectorRegistry, Histogram


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def writes_into(written: list[str], fail_on: str = ""):
    """A batch writer for Batcher: records comments, fails a batch holding `fail_on`."""

    async def write(batch: list[NewComment]) -> list[None]:
        for _ in range(len(batch) % 3):
            await asyncio.sleep(0)
        if fail_on and any(c.comment == fail_on for c in batch):
            raise RolledBackError("constraint violated")
        written.extend(c.comment for c in batch)
        return [None] * len(batch)

    return write


@pytest.mark.parametrize("concurrency", [1, 2])
def test_batcher_acknowledges_every_comment_exactly_once(concurrency: int) -> None:
    """Writers arriving just as a flush finishes must still be written (no lost wake-up)."""
    written: list[str] = []

    async def client(batcher: Batcher, n: int) -> None:
        for i in range(50):
            for _ in range((n + i) % 4):
                await asyncio.sleep(0)
            await batcher.submit(NewComment("c", "a@b.co", f"{n}-{i}"))

    async def main() -> None:
        batcher = Batcher(writes_into(written), concurrency, max_batch=500)
        await asyncio.gather(*(client(batcher, n) for n in range(40)))
        await batcher.drain()

    run(main())
    assert sorted(written) == sorted(f"{n}-{i}" for n in range(40) for i in range(50))


def test_batcher_groups_concurrent_writes_and_propagates_errors() -> None:
    batches: list[int] = []
    written: list[str] = []
    inner = writes_into(written, fail_on="boom")

    async def write(batch: list[NewComment]) -> list[None]:
        batches.append(len(batch))
        await asyncio.sleep(0.01)
        return await inner(batch)

    async def main() -> list[object]:
        batcher = Batcher(write, 1, max_batch=500)
        first = [batcher.submit(NewComment("c", "a@b.co", str(i))) for i in range(10)]
        results = await asyncio.gather(*first, return_exceptions=True)
        failing = await asyncio.gather(
            batcher.submit(NewComment("c", "a@b.co", "boom")), return_exceptions=True
        )
        return results + failing

    results = run(main())
    assert results[:10] == [None] * 10
    assert isinstance(results[10], RolledBackError)
    assert batches[0] == 10  # all ten queued before the first flush ran: one transaction


class FlakyStorage(BatchedStorage):
    """A Storage whose batches fail when they hold a comment 'bad'."""

    def __init__(self, error: type[Exception], settings: Settings | None = None) -> None:
        super().__init__(settings or Settings(), write_concurrency=1, read_concurrency=1)
        self.error = error
        self.written: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def _write_batch(self, comments: Sequence[NewComment]) -> None:
        await asyncio.sleep(0.01)
        await self.gate.wait()
        if any(c.comment == "bad" for c in comments):
            raise self.error("no")
        self.written.extend(c.comment for c in comments)


def _add_together(storage: Storage, texts: list[str]) -> list[object]:
    async def main() -> list[object]:
        adds = [storage.add(NewComment("c", "a@b.co", text)) for text in texts]
        return await asyncio.gather(*adds, return_exceptions=True)

    return run(main())


def test_a_rolled_back_batch_does_not_fail_the_comments_that_succeed_alone() -> None:
    storage = FlakyStorage(RolledBackError)
    results = _add_together(storage, ["a", "b", "bad", "c"])
    assert results[:2] + results[3:] == ["c", "c", "c"]  # each answered with its content_id
    assert isinstance(results[2], RolledBackError)
    assert sorted(storage.written) == ["a", "b", "c"]


def test_a_full_write_queue_refuses_at_once() -> None:
    storage = FlakyStorage(RolledBackError, Settings(write_queue_max=3))

    async def main() -> list[object]:
        storage.gate.clear()
        # the first run takes 1, then 3 wait in the queue: the 5th comment is refused
        first = [asyncio.ensure_future(storage.add(NewComment("c", "a@b.co", "1")))]
        await asyncio.sleep(0)
        waiting = [
            asyncio.ensure_future(storage.add(NewComment("c", "a@b.co", str(n))))
            for n in range(2, 5)
        ]
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError):
            await storage.add(NewComment("c", "a@b.co", "refused"))
        with pytest.raises(OverloadedError):  # a keyed write too
            await storage.add(NewComment("c", "a@b.co", "refused"), key="k")
        storage.gate.set()
        return await asyncio.gather(*first, *waiting)

    assert run(main()) == ["c"] * 4
    assert sorted(storage.written) == ["1", "2", "3", "4"]


def test_a_batch_of_unknown_outcome_is_not_retried() -> None:
    """The commit may have happened: writing the comments again could store them twice."""
    storage = FlakyStorage(StorageUnavailableError)
    results = _add_together(storage, ["a", "b", "bad"])
    assert all(isinstance(r, StorageUnavailableError) for r in results)
    assert storage.written == []


def test_settings_defaults_and_parsing() -> None:
    s = Settings.from_env({"PORT": "9000", "WORKERS": "3", "LOG_LEVEL": "DEBUG"})
    assert (s.port, s.workers, s.log_level, s.backend) == (9000, 3, "debug", "sqlite")
    assert Settings.from_env({}).port == 8000
    pg = Settings.from_env({"DATABASE_URL": "postgresql://u:pw@db:5432/x"})
    assert pg.backend == "postgres"
    assert "pw" not in str(pg.public())


def test_settings_errors_name_every_bad_variable_and_hide_secrets() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(
            {
                "PORT": "http",
                "WORKERS": "0",
                "LOG_LEVEL": "loud",
                "DATABASE_URL": "mysql://user:hunter2@db/x",
                "ACCESS_LOG": "maybe",
                "SQLITE_SYNCHRONOUS": "OFF",
            }
        )
    message = str(info.value)
    for name in ("PORT", "WORKERS", "LOG_LEVEL", "DATABASE_URL", "ACCESS_LOG", "SQLITE_SYNC"):
        assert name in message
    assert "hunter2" not in message


def test_redact_url() -> None:
    assert redact_url("postgresql://u:secret@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redact_url("postgresql://h/d") == "postgresql://h/d"
    assert redact_url("") == ""


@pytest.mark.parametrize(
    ("value", "expected"), [(42, "42"), ("42", "42"), (-7, "-7"), ("a b", "a b"), ("ü", "ü")]
)
def test_content_id_normalisation(value: object, expected: str) -> None:
    body = orjson.dumps({"email": "a@b.co", "comment": "x", "content_id": value})
    assert parse_new_comment(body).content_id == expected
    assert normalise_content_id(expected) == expected  # and it is listed back by that id


def test_missing_postgres_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import comments_testlib

    monkeypatch.setattr(comments_testlib, "pg_bindir", lambda: None)
    monkeypatch.delenv("COMMENTS_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="skipping PostgreSQL tests"):
        comments_testlib.postgres_bindir_or_skip()
    monkeypatch.setenv("COMMENTS_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="COMMENTS_REQUIRE_POSTGRES=1"):
        comments_testlib.postgres_bindir_or_skip()


class FakeConnection:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.terminated = False

    async def fetch(self, *args: object) -> list[tuple[str]]:
        if self.error is not None:
            raise self.error
        return [("[]",)]

    async def execute(self, *args: object) -> None:
        if self.error is not None:
            raise self.error

    def terminate(self) -> None:
        self.terminated = True


class FakePool:
    """Hands out the given connections in order; release may fail like asyncpg's reset."""

    def __init__(self, *connections: FakeConnection, release_error: bool = False) -> None:
        self.connections = list(connections)
        self.released: list[FakeConnection] = []
        self.release_error = release_error
        self.expired = False

    async def acquire(self, timeout: float) -> FakeConnection:
        return self.connections.pop(0)

    async def release(self, conn: FakeConnection, timeout: float) -> None:
        self.released.append(conn)
        if self.release_error:
            raise RuntimeError("cannot reset the connection")

    def expire_connections(self) -> None:
        self.expired = True


def pg_storage(pool: FakePool):
    from comments.postgres_store import PostgresStorage

    storage = PostgresStorage(Settings(database_url="postgresql://u@h/db"))
    storage._pool = pool
    return storage


def test_a_dead_connection_is_replaced_alone_and_the_read_retried() -> None:
    import asyncpg

    dead = FakeConnection(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    pool = FakePool(dead, FakeConnection())
    assert run(pg_storage(pool)._read_lists(["a"])) == [b"[]"]
    assert pool.released[0] is dead and len(pool.released) == 2  # both given back
    assert not pool.expired  # the rest of the pool is kept


def test_write_errors_are_classified_by_what_the_server_reports() -> None:
    import asyncpg

    rolled_back = FakePool(FakeConnection(asyncpg.exceptions.UniqueViolationError("dup")))
    with pytest.raises(RolledBackError):
        run(pg_storage(rolled_back)._write_batch([NewComment("c", "a@b.co", "x")]))
    cut = FakePool(FakeConnection(asyncpg.exceptions.AdminShutdownError("shutdown")))
    with pytest.raises(StorageUnavailableError) as unknown:
        run(pg_storage(cut)._write_batch([NewComment("c", "a@b.co", "x")]))
    assert not isinstance(unknown.value, NotStoredError)  # may be committed: not retried


def test_a_write_that_committed_stands_when_releasing_its_connection_fails() -> None:
    pool = FakePool(FakeConnection(), release_error=True)
    run(pg_storage(pool)._write_batch([NewComment("c", "a@b.co", "x")]))
    assert pool.connections == [] and pool.released[0].terminated


def test_access_lines_written_in_one_loop_turn_arrive_whole_and_complete(tmp_path: Path) -> None:
    out = tmp_path / "access.log"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    count = 500  # many PIPE_BUF chunks of lines

    async def burst() -> None:
        access = AccessLog(fd)
        for n in range(count):
            access.write({"method": "GET", "path": f"/p/{n}", "status": 200})
        access.close()  # hands over what is still pending and waits for the writer

    try:
        run(burst())
    finally:
        os.close(fd)
    lines = out.read_bytes().splitlines()
    assert [orjson.loads(line)["path"] for line in lines] == [f"/p/{n}" for n in range(count)]


def write_lines(access: AccessLog, name: str, count: int) -> None:
    """count access lines of varying length, flushed as they would be every few loop turns."""
    for n in range(count):
        access.write({"method": "GET", "path": f"/{name}/{n}", "pad": "x" * (n % 300)})
        if n % 97 == 0:
            access.flush()
    access.flush()


def start_reading(fd: int) -> tuple[threading.Thread, list[dict]]:
    """A thread reading fd to its end, and the list it fills with the lines it read."""
    received: list[dict] = []

    def read() -> None:
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
        received.extend(orjson.loads(line) for line in data.splitlines())

    reader = threading.Thread(target=read)
    reader.start()
    return reader, received


def test_access_lines_of_workers_sharing_a_pipe_arrive_whole_in_order(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    count = 3000  # about 1 MB each: far more than the pipe holds while nobody reads

    def worker(name: str) -> None:
        async def serve() -> None:
            access = AccessLog(write_end)  # two workers sharing one stdout pipe
            write_lines(access, name, count)
            access.close()

        run(serve())

    workers = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in workers:
        thread.start()
    time.sleep(0.2)  # the pipe fills up: writers must wait without blocking their loops
    reader, received = start_reading(read_end)
    for thread in workers:
        thread.join(30)
    os.close(write_end)
    reader.join(30)
    os.close(read_end)
    for name in ("a", "b"):
        paths = [line["path"] for line in received if line["path"].startswith(f"/{name}/")]
        assert paths == [f"/{name}/{n}" for n in range(count)]


def test_a_pipe_nobody_reads_never_blocks_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_PENDING_CHUNKS", 5)
    read_end, write_end = os.pipe()
    access = AccessLog(write_end)

    async def serve(name: str, count: int) -> None:
        write_lines(access, name, count)
        await asyncio.sleep(0.05)

    run(serve("p", 5000))  # about 2 MB, the pipe takes 64 KiB: returns, the loop never waited
    reader, received = start_reading(read_end)
    run(serve("q", 10))  # once stdout is read again, new lines get through
    access.close()
    os.close(write_end)
    reader.join(30)
    paths = [line["path"] for line in received]
    kept = [int(p[3:]) for p in paths if p.startswith("/p/")]
    assert kept[:50] == list(range(50)) and kept == sorted(kept)  # whole, in order
    assert paths[len(kept) :] == [f"/q/{n}" for n in range(10)]
    kept_bytes = sum(len(orjson.dumps(line)) + 1 for line in received[: len(kept)])
    assert kept_bytes <= (64 + 6 * 4) << 10  # the pipe, the chunk being written, 5 pending


def test_every_process_hashes_a_content_id_to_the_same_slot() -> None:
    # Pinned by value: Python's own hash() of a str differs from process to process.
    assert [SlotVersions.slot(c) for c in ("abc", "42", "é")] == [16834, 45192, 36158]


def test_a_cached_list_stays_current_until_a_commit_marks_its_slot(tmp_path: Path) -> None:
    path = tmp_path / "versions"
    mine, theirs = SlotVersions(path), SlotVersions(path)  # two mappings, as two workers
    cache = ListCache(mine, max_bytes=1 << 20)
    version = mine.version(SlotVersions.slot("a"))
    cache.put("a", version, time.monotonic(), b'[{"comment":"1"}]')
    cache.put("b", mine.version(SlotVersions.slot("b")), time.monotonic(), None)
    assert cache.get("a") == b'[{"comment":"1"}]'
    assert cache.get("b") is None  # "no comments" is cached too

    theirs.mark(["a", "a"], 7)  # another worker committed row 7 for "a"
    assert cache.get("a") is MISS
    assert cache.get("b") is None
    theirs.mark(["b"])  # a keyed retry: no new row, still a new value
    assert cache.get("b") is MISS
    assert mine.version(SlotVersions.slot("b")) >= 1 << 63
    assert cache.get("never-read") is MISS
    mine.close()
    theirs.close()


def test_cached_lists_expire_and_are_bounded_in_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = SlotVersions(tmp_path / "versions")
    cache = ListCache(versions, max_bytes=4 * (ENTRY_OVERHEAD + 1000))
    for name in "abcde":
        cache.put(name, 0, time.monotonic(), b"x" * 1000)
    assert cache.get("a") is MISS  # the least recently used went first
    assert cache.size <= 4 * (ENTRY_OVERHEAD + 1000)
    cache.put("huge", 0, time.monotonic(), b"x" * 2000)  # over a quarter: not kept
    assert cache.get("huge") is MISS and cache.get("e") == b"x" * 1000

    later = time.monotonic() + MAX_AGE_SECONDS + 1
    monkeypatch.setattr("comments.list_cache.time.monotonic", lambda: later)
    assert cache.get("e") is MISS
    versions.close()


def test_sqlite_lists_are_cached_and_see_another_workers_writes(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    migrate(settings)

    async def scenario() -> None:
        reader, writer = SQLiteStorage(settings), SQLiteStorage(settings)
        await reader.start()
        await writer.start()
        try:
            assert await reader.list_json("c") is None
            await writer.add(NewComment("c", "a@b.co", "plain"))
            assert orjson.loads(await reader.list_json("c")) == [
                {"email": "a@b.co", "comment": "plain"}
            ]
            assert reader._cache is not None and reader._cache.get("c") is not MISS
            await writer.add(NewComment("c", "a@b.co", "keyed"), key="k1")
            listed = orjson.loads(await reader.list_json("c"))
            assert [c["comment"] for c in listed] == ["plain", "keyed"]
            await writer.add(NewComment("c", "a@b.co", "keyed"), key="k1")  # a retry
            listed = orjson.loads(await reader.list_json("c"))
            assert [c["comment"] for c in listed] == ["plain", "keyed"]  # stored nothing new
        finally:
            await reader.close()
            await writer.close()

    run(scenario())


def test_log_timestamps_are_utc_with_milliseconds_across_second_boundaries() -> None:
    stamps = [utc_timestamp(t) for t in (1700000000.999, 1700000001.0, 1700000001.25, 0.5)]
    assert stamps == [
        "2023-11-14T22:13:20.999Z",
        "2023-11-14T22:13:21.000Z",
        "2023-11-14T22:13:21.250Z",
        "1970-01-01T00:00:00.500Z",
    ]


def test_writer_messages_survive_any_split_of_the_pipe() -> None:
    messages = [[1, "add", "c", "a@b.co", "x" * 300], [2, "purge", 1.5], [[3, True, None]]]
    stream = b"".join(frame(m) for m in messages)
    for cut in range(len(stream) + 1):
        buffer, received = bytearray(), []
        for part in (stream[:cut], stream[cut:]):
            buffer += part
            received += unframe(buffer)
        assert received == messages and buffer == b""


def test_a_writer_that_dies_fails_its_pending_writes_and_is_started_again(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    migrate(settings)

    async def scenario() -> None:
        storage = SQLiteStorage(settings)
        await storage.start()
        try:
            await storage.add(NewComment("c", "a@b.co", "before"))
            pid = storage._writer.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)  # it cannot answer ...
            pending = asyncio.ensure_future(storage.add(NewComment("c", "a@b.co", "lost?")))
            await asyncio.sleep(0.05)
            os.kill(pid, signal.SIGKILL)  # ... and dies with the write sent
            with pytest.raises(StorageUnavailableError) as unknown:
                await pending
            assert not isinstance(unknown.value, NotStoredError)  # perhaps stored
            await storage.add(NewComment("c", "a@b.co", "after"))  # a new writer
            assert storage._writer.pid not in (None, pid)
            listed = [c["comment"] for c in orjson.loads(await storage.list_json("c"))]
            assert listed == ["before", "after"]
        finally:
            await storage.close()

    run(scenario())


def test_request_metrics_are_written_once_per_loop_pass_as_observe_would() -> None:
    durations = [0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.01, 0.2, 4.9, 7.0]
    reference = Histogram("reference", "", buckets=metrics._BOUNDS, registry=CollectorRegistry())
    route = f"/units/{time.monotonic_ns()}"  # labels no other test writes
    labels = {"method": "GET", "route": route}

    def latency(suffix: str, **extra: str) -> float | None:
        name = "comments_http_request_duration_seconds" + suffix
        return REGISTRY.get_sample_value(name, {**labels, **extra})

    async def serve() -> None:
        for seconds in durations:
            metrics.request_started()
            metrics.request_finished("GET", route, 200, seconds)
            reference.observe(seconds)
        assert latency("_count") is None  # nothing written during the pass
        await asyncio.sleep(0)  # the next pass

    run(serve())
    buckets = [s for s in reference.collect()[0].samples if s.name.endswith("_bucket")]
    assert len(buckets) == len(metrics._BOUNDS)
    for bucket in buckets:
        le = bucket.labels["le"]
        assert latency("_bucket", le=le) == bucket.value, le
    assert latency("_count") == len(durations)
    assert latency("_sum") == pytest.approx(sum(durations))
    requests = {**labels, "status": "200"}
    assert REGISTRY.get_sample_value("comments_http_requests_total", requests) == len(durations)
