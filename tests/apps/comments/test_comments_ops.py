"""Operations: health, readiness, metrics, OpenAPI, logs, settings, migrations, indexes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from comments.postgres_store import PG_LIST_MANY, PG_PAGE
from comments.sqlite_store import SQLITE_LIST, SQLITE_PAGE
from comments_testlib import (
    APP_DIR,
    PG_PASSWORD,
    Backend,
    Server,
    free_port,
    metric,
    request,
    unique_id,
)


def test_liveness_and_readiness(shared_server: Server) -> None:
    assert shared_server.get("/healthz").json() == {"status": "OK"}
    ready = shared_server.get("/readyz")
    assert ready.status == 200
    assert ready.json()["status"] == "READY"


def test_openapi_document_describes_the_api(shared_server: Server) -> None:
    doc = shared_server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/comment/new", "/api/comment/list/{content_id}", "/healthcheck"} <= set(
        doc["paths"]
    )
    assert doc["components"]["schemas"]["NewCommentRequest"]["required"] == [
        "email",
        "comment",
        "content_id",
    ]


def test_metrics_sum_all_workers(backend: Backend, started: list[Server]) -> None:
    server = backend.server(WORKERS=2).start()
    started.append(server)
    cid = unique_id()

    def post_many(n: int) -> None:
        for i in range(25):
            body = {"email": "m@example.com", "comment": f"{n}-{i}", "content_id": cid}
            assert server.post(json=body).status == 200

    threads = [threading.Thread(target=post_many, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(3):
        assert server.get("/api/comment/list/nope-" + cid).status == 404
    server.post(json={"email": "x"})  # 422

    route = "/api/comment/new"
    list_route = "/api/comment/list/{content_id}"
    expected = [
        ("comments_created_total", {}, 200),
        ("comments_http_requests_total", {"route": route, "status": "200"}, 200),
        ("comments_http_requests_total", {"route": route, "status": "422"}, 1),
        ("comments_http_requests_total", {"route": list_route, "status": "404"}, 3),
    ]

    def counted(text: str) -> list[tuple[str, dict[str, str], float]]:
        return [(name, labels, metric(text, name, **labels)) for name, labels, _ in expected]

    deadline = time.monotonic() + 10
    while True:  # a worker writes its totals at the start of the loop pass after its responses
        reply = server.get("/metrics")
        text = reply.body.decode()
        if counted(text) == expected or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert counted(text) == expected
    assert metric(text, "comments_http_request_duration_seconds_count", route=route) == 201
    assert metric(text, "comments_http_request_duration_seconds_bucket", route=route, le="+Inf")
    assert cid not in text  # route templates, not raw paths: bounded label cardinality
    if backend.name == "postgres":
        # Both workers' pools, sampled at start: at least the connections each opened to warm up.
        open_connections = metric(text, "comments_db_connections", state="idle") + metric(
            text, "comments_db_connections", state="busy"
        )
        assert open_connections >= 2


def test_access_log_is_one_json_line_per_request(shared_server: Server) -> None:
    marker = unique_id("logmark")
    shared_server.get(f"/api/comment/list/{marker}")
    deadline = time.monotonic() + 30
    while marker not in shared_server.logs():  # queued, written within ACCESS_LOG_FLUSH_SECONDS
        assert time.monotonic() < deadline
        time.sleep(0.02)
    lines = [orjson.loads(line) for line in shared_server.logs().splitlines() if line.strip()]
    mine = [e for e in lines if e.get("path") == f"/api/comment/list/{marker}"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["logger"] == "comments.access"
    assert entry["route"] == "/api/comment/list/{content_id}"
    assert entry["status"] == 404
    assert entry["method"] == "GET"
    assert isinstance(entry["duration_ms"], float)
    assert {"ts", "level", "pid"} <= set(entry)


def test_database_password_is_never_logged(shared_server: Server) -> None:
    shared_server.get("/readyz")
    logs = shared_server.logs()
    assert PG_PASSWORD not in logs
    if shared_server.extra["backend"].name == "postgres":
        assert ":***@" in logs  # the redacted URL is logged instead


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"DB_POOL_SIZE": "-1"}, "DB_POOL_SIZE"),
        ({"SQLITE_SYNCHRONOUS": "OFF"}, "SQLITE_SYNCHRONOUS"),
        ({"DATABASE_URL": f"mysql://root:{PG_PASSWORD}@db/x"}, "DATABASE_URL"),
    ],
)
def test_invalid_settings_stop_the_launcher_with_a_clear_message(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    full = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "PORT": str(free_port())}
    full.update(env)
    result = subprocess.run(
        [sys.executable, "-m", "comments"],
        cwd=APP_DIR,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    message = orjson.loads(result.stderr.strip().splitlines()[-1])["msg"]
    assert variable in message
    assert PG_PASSWORD not in result.stderr + result.stdout


def test_unreachable_database_at_start_fails_clearly(tmp_path: Path) -> None:
    url = f"postgresql://u:{PG_PASSWORD}@127.0.0.1:{free_port()}/x"
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": url,
        "PORT": str(free_port()),
        "DB_STARTUP_TIMEOUT": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "comments"],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot prepare the database" in result.stdout
    assert PG_PASSWORD not in result.stdout + result.stderr


def applied_versions(backend: Backend, store: dict[str, str]) -> list[int]:
    if backend.pg is not None:
        database = store["DATABASE_URL"].rsplit("/", 1)[1]
        rows = backend.pg.sql("SELECT version FROM schema_migrations ORDER BY 1", database)
    else:
        with sqlite3.connect(Path(store["DATA_DIR"]) / "comments.sqlite3") as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def test_servers_starting_together_migrate_once(backend: Backend, started: list[Server]) -> None:
    store = backend.store_env()
    servers = [backend.server(store=store, WORKERS=1) for _ in range(3)]
    for server in servers:
        server.start(wait=False)
        started.append(server)
    for server in servers:
        server.wait_ready()
    assert applied_versions(backend, store) == [1, 2]
    cid = unique_id()
    for i, server in enumerate(servers):
        body = {"email": "m@example.com", "comment": str(i), "content_id": cid}
        assert server.post(json=body).status == 200
    assert len(servers[0].get(f"/api/comment/list/{cid}").json()) == 3
    for server in servers:
        assert server.stop() == 0
    # a restart finds the schema current and applies nothing
    again = backend.server(store=store, WORKERS=1).start()
    started.append(again)
    assert applied_versions(backend, store) == [1, 2]
    assert '"applied_migrations":[]' in again.logs()


def test_listing_uses_the_content_id_index(backend: Backend, started: list[Server]) -> None:
    """The list query is an index range scan, so its cost does not grow with the table."""
    store = backend.store_env()
    server = backend.server(store=store, WORKERS=1).start()  # creates the schema
    started.append(server)
    server.stop()
    if backend.pg is not None:
        database = store["DATABASE_URL"].rsplit("/", 1)[1]
        backend.pg.sql(
            "INSERT INTO comments (content_id, email, comment) SELECT (i % 2000)::text, "
            "'a@b.co', 'x' FROM generate_series(1, 50000) AS i",
            database,
        )
        backend.pg.sql("ANALYZE comments", database)
        for sql, args in [
            (PG_LIST_MANY, {"$1": "ARRAY['42', '7']"}),
            (PG_PAGE, {"$1": "'42'", "$2": "0", "$3": "10"}),
        ]:
            for name, value in args.items():
                sql = sql.replace(name, value)
            plan = backend.pg.sql("EXPLAIN " + sql, database)
            text = "\n".join(r[0] for r in plan)
            assert "comments_content_id_id" in text, text
            assert "Seq Scan on comments" not in text, text
    else:
        with sqlite3.connect(Path(store["DATA_DIR"]) / "comments.sqlite3") as conn:
            conn.executemany(
                "INSERT INTO comments (content_id, email, comment) VALUES (?, 'a@b.co', 'x')",
                [(str(i % 2000),) for i in range(50000)],
            )
            conn.execute("ANALYZE")
            for sql, args in [(SQLITE_LIST, ("42",)), (SQLITE_PAGE, ("42", 0, 10))]:
                plan = conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
                text = " ".join(str(r[-1]) for r in plan)
                assert "USING INDEX comments_content_id_id" in text, text
                assert "SCAN comments" not in text, text
                assert "TEMP B-TREE" not in text, text  # ordered by the index, no sort step


def test_http_connection_survives_bad_requests(shared_server: Server) -> None:
    """A keep-alive connection stays usable after 4xx answers."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=10)
    try:
        for _ in range(3):
            reply = request(
                shared_server.port,
                "POST",
                "/api/comment/new",
                body=b"{",
                conn=conn,
                headers={"Content-Type": "application/json"},
            )
            assert reply.status == 400
        assert request(shared_server.port, "GET", "/healthcheck", conn=conn).status == 200
    finally:
        conn.close()


def test_metrics_dirs_of_killed_launchers_are_removed(tmp_path: Path) -> None:
    abandoned = tmp_path / "comments-metrics-abandoned"
    abandoned.mkdir()
    (abandoned / ".lock").touch()
    (abandoned / "counter_123.db").write_bytes(b"\0" * 16)
    os.utime(abandoned, (time.time() - 3600, time.time() - 3600))
    env = {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(free_port()),
        "TMPDIR": str(tmp_path),
        "WORKERS": "1",
        "HOST": "127.0.0.1",
    }
    server = Server(env=env, log_path=tmp_path / "server.log").start()
    try:
        assert not abandoned.exists()
        own = [p for p in tmp_path.glob("comments-metrics-*") if p != abandoned]
        assert len(own) == 1  # the running launcher's own directory
    finally:
        assert server.stop() == 0
    assert list(tmp_path.glob("comments-metrics-*")) == []  # removed at a clean exit
