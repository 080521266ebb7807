"""Fixtures for the comments API tests.

Every test talks HTTP to a real `python -m comments` process on a free loopback port, backed
by SQLite in a temporary DATA_DIR or by a real PostgreSQL server that these fixtures start
from the PostgreSQL binaries (initdb + pg_ctl in a temporary directory).

Without PostgreSQL binaries the PostgreSQL tests skip, unless COMMENTS_REQUIRE_POSTGRES=1
(CI sets it), which turns a missing PostgreSQL into a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from comments_testlib import (
    BACKENDS,
    Backend,
    PostgresServer,
    Server,
    postgres_bindir_or_skip,
)


def start_postgres() -> PostgresServer:
    """A started PostgreSQL server; skips (or fails under COMMENTS_REQUIRE_POSTGRES=1) when
    PostgreSQL is not installed."""
    server = PostgresServer(postgres_bindir_or_skip())
    try:
        server.start()
    except Exception:
        log = server.log.read_text() if server.log.exists() else ""
        server.destroy()
        raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.destroy()


def _backend(name: str, tmp: Path, request: pytest.FixtureRequest) -> Backend:
    pg = request.getfixturevalue("postgres") if name == "postgres" else None
    return Backend(name, tmp, pg)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Per-test backend factory (use for tests that start their own servers)."""
    return _backend(request.param, tmp_path, request)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One running server per backend shared by a module's tests (they use unique ids)."""
    backend = _backend(request.param, tmp_path_factory.mktemp("shared"), request)
    server = backend.server().start()
    server.extra["backend"] = backend
    yield server
    server.stop()


@pytest.fixture
def started() -> Iterator[list[Server]]:
    """Collects servers a test starts and stops any still running at the end."""
    servers: list[Server] = []
    yield servers
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            try:
                server.stop(timeout=30)
            except Exception:
                server.kill()
