"""Unit tests of the pieces that need no server: group commit, settings, validation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from comments.settings import Settings, SettingsError, redact_url
from comments.storage import WriteBatcher
from comments.validation import NewComment, normalise_content_id


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


@pytest.mark.parametrize("concurrency", [1, 2])
def test_batcher_acknowledges_every_comment_exactly_once(concurrency: int) -> None:
    """Writers arriving just as a flush finishes must still be written (no lost wake-up)."""
    written: list[str] = []

    async def write(batch: Sequence[NewComment]) -> None:
        for _ in range(len(batch) % 3):
            await asyncio.sleep(0)
        written.extend(c.comment for c in batch)

    async def client(batcher: WriteBatcher, n: int) -> None:
        for i in range(50):
            for _ in range((n + i) % 4):
                await asyncio.sleep(0)
            await batcher.add(NewComment("c", "a@b.co", f"{n}-{i}"))

    async def main() -> None:
        batcher = WriteBatcher(write, concurrency=concurrency)
        await asyncio.gather(*(client(batcher, n) for n in range(40)))
        await batcher.drain()

    run(main())
    assert sorted(written) == sorted(f"{n}-{i}" for n in range(40) for i in range(50))


def test_batcher_groups_concurrent_writes_and_propagates_errors() -> None:
    batches: list[int] = []

    async def write(batch: Sequence[NewComment]) -> None:
        batches.append(len(batch))
        await asyncio.sleep(0.01)
        if any(c.comment == "boom" for c in batch):
            raise RuntimeError("disk on fire")

    async def main() -> list[object]:
        batcher = WriteBatcher(write, concurrency=1)
        first = [batcher.add(NewComment("c", "a@b.co", str(i))) for i in range(10)]
        results = await asyncio.gather(*first, return_exceptions=True)
        failing = await asyncio.gather(
            batcher.add(NewComment("c", "a@b.co", "boom")), return_exceptions=True
        )
        return results + failing

    results = run(main())
    assert results[:10] == [None] * 10
    assert isinstance(results[10], RuntimeError)
    assert batches[0] == 10  # all ten queued before the first flush ran: one transaction


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
    assert normalise_content_id(value) == expected


def test_list_cache_keeps_long_lists_within_its_byte_budget() -> None:
    from comments.listcache import ListCache

    cache = ListCache(max_bytes=100, min_items=3)
    cache.put("short", 1, 2, b"x" * 10)  # too few comments: not worth caching
    assert cache.get("short") is None
    cache.put("a", 5, 3, b"a" * 40)
    cache.put("b", 6, 3, b"b" * 40)
    assert cache.get("a") == (5, b"a" * 40)  # a is now the most recently used
    cache.put("c", 7, 3, b"c" * 40)  # over budget: evicts b, the least recently used
    assert cache.get("b") is None
    assert (len(cache), cache.size_bytes) == (2, 80)
    cache.put("a", 9, 4, b"A" * 50)  # replaced, not added twice
    assert cache.get("a") == (9, b"A" * 50)
    assert cache.size_bytes == 90
    cache.put("huge", 1, 3, b"h" * 101)  # larger than the whole budget: ignored
    assert cache.get("huge") is None


def test_missing_postgres_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import comments_testlib

    monkeypatch.setattr(comments_testlib, "pg_bindir", lambda: None)
    monkeypatch.delenv("COMMENTS_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="skipping PostgreSQL tests"):
        comments_testlib.postgres_bindir_or_skip()
    monkeypatch.setenv("COMMENTS_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="COMMENTS_REQUIRE_POSTGRES=1"):
        comments_testlib.postgres_bindir_or_skip()
