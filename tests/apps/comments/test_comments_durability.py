"""Concurrency across worker processes, durability across SIGKILL, graceful shutdown and
readiness while the database is down."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable

import orjson
from comments_testlib import Backend, PostgresServer, Server, metric, request, unique_id


def post_in_threads(
    server: Server,
    threads: int,
    per_thread: int,
    content_id: Callable[[int, int], str],
    stop: threading.Event | None = None,
) -> tuple[list[list[str]], list[list[str]], list[int]]:
    """Each thread posts comments "t<thread>-<n>" one after the other on a keep-alive
    connection. Returns (acknowledged per thread, sent per thread, non-200 statuses)."""
    acked: list[list[str]] = [[] for _ in range(threads)]
    sent: list[list[str]] = [[] for _ in range(threads)]
    bad: list[int] = []

    def run(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            for n in range(per_thread):
                if stop is not None and stop.is_set():
                    return
                text = f"t{t}-{n}"
                body = {
                    "email": f"t{t}@example.com",
                    "comment": text,
                    "content_id": content_id(t, n),
                }
                sent[t].append(text)
                try:
                    reply = request(server.port, "POST", "/api/comment/new", json=body, conn=conn)
                except (OSError, http.client.HTTPException):
                    if stop is None:
                        raise
                    return  # the server is shutting down: connection closed
                if reply.status == 200:
                    acked[t].append(text)
                else:
                    bad.append(reply.status)
        finally:
            conn.close()

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    return acked, sent, bad


def assert_thread_order(listed: list[str], acked: list[list[str]]) -> None:
    """A client's comments appear in the order it got them acknowledged."""
    position = {text: i for i, text in enumerate(listed)}
    for texts in acked:
        indexes = [position[t] for t in texts]
        assert indexes == sorted(indexes)


def all_comments(server: Server, content_id: str) -> list[str]:
    reply = server.get(f"/api/comment/list/{content_id}")
    if reply.status == 404:
        return []
    assert reply.status == 200
    return [c["comment"] for c in reply.json()]


def test_2000_concurrent_posts_to_one_content_id(backend: Backend, started: list[Server]) -> None:
    server = backend.server(WORKERS=2).start()
    started.append(server)
    cid = unique_id("hot")
    acked, _, bad = post_in_threads(server, 40, 50, lambda t, n: cid)
    assert bad == []
    assert sum(len(a) for a in acked) == 2000

    listed = all_comments(server, cid)
    assert len(listed) == 2000
    assert sorted(listed) == sorted(t for a in acked for t in a)
    assert_thread_order(listed, acked)

    # the same order through pagination, and on every read
    paged: list[str] = []
    after = ""
    while True:
        reply = server.get(f"/api/comment/list/{cid}?limit=700&after={after}")
        paged += [c["comment"] for c in reply.json()]
        after = reply.headers.get("x-next-cursor", "")
        if not after:
            break
    assert paged == listed
    assert all_comments(server, cid) == listed


def test_acknowledged_writes_survive_sigkill(backend: Backend, started: list[Server]) -> None:
    store = backend.store_env()
    server = backend.server(store=store, WORKERS=2).start()
    started.append(server)
    ids = [unique_id(f"k{i}") for i in range(3)]
    acked, _, bad = post_in_threads(server, 12, 40, lambda t, n: ids[(t + n) % 3])
    assert bad == []
    server.kill()  # SIGKILL launcher and workers: no shutdown code runs

    restarted = backend.server(store=store, WORKERS=2).start()
    started.append(restarted)
    listed = [c for cid in ids for c in all_comments(restarted, cid)]
    assert sorted(listed) == sorted(t for a in acked for t in a)
    for cid in ids:
        listed_here = all_comments(restarted, cid)
        here = set(listed_here)
        assert_thread_order(listed_here, [[t for t in a if t in here] for a in acked])
    # and the store keeps working after the crash
    body = {"email": "after@example.com", "comment": "after restart", "content_id": ids[0]}
    assert restarted.post(json=body).status == 200
    assert all_comments(restarted, ids[0])[-1] == "after restart"


def wait_for_log(server: Server, text: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while server.logs().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} x{count} not logged:\n{server.logs()}"
        time.sleep(0.02)


def in_progress(server: Server) -> float:
    text = server.get("/metrics").body.decode()
    return metric(text, "comments_http_requests_in_progress")


def test_sigterm_lets_an_in_flight_request_finish(backend: Backend, started: list[Server]) -> None:
    store = backend.store_env()
    server = backend.server(store=store, WORKERS=2).start()
    started.append(server)
    cid = unique_id("inflight")
    body = orjson.dumps({"email": "slow@example.com", "comment": "slow body", "content_id": cid})
    head = (
        f"POST /api/comment/new HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        sock.sendall(head + body[:10])  # the request has started; its body is incomplete
        deadline = time.monotonic() + 30
        while in_progress(server) < 2:  # the /metrics request itself counts as one
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert server.proc is not None
        server.proc.terminate()  # SIGTERM to the launcher
        wait_for_log(server, '"msg":"Shutting down"', 2)  # both workers stopped accepting
        sock.sendall(body[10:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    finally:
        sock.close()
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", response
    assert orjson.loads(rest.split(b"\r\n\r\n", 1)[1])["status"] == "SUCCESS"
    assert server.proc.wait(60) == 0

    restarted = backend.server(store=store, WORKERS=1).start()
    started.append(restarted)
    assert all_comments(restarted, cid) == ["slow body"]


def test_graceful_shutdown_under_load_loses_nothing(
    backend: Backend, started: list[Server]
) -> None:
    store = backend.store_env()
    server = backend.server(store=store, WORKERS=2).start()
    started.append(server)
    cid = unique_id("load")
    stop = threading.Event()
    result: list[tuple[list[list[str]], list[list[str]], list[int]]] = []
    loader = threading.Thread(
        target=lambda: result.append(post_in_threads(server, 16, 10_000, lambda t, n: cid, stop))
    )
    loader.start()
    deadline = time.monotonic() + 60
    while len(all_comments(server, cid)) < 300:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.proc is not None
    server.proc.terminate()
    assert server.proc.wait(60) == 0
    stop.set()
    loader.join(120)
    acked, sent, bad = result[0]
    assert bad == []  # no 5xx (nor anything else) while shutting down

    restarted = backend.server(store=store, WORKERS=1).start()
    started.append(restarted)
    stored = all_comments(restarted, cid)
    acked_all = {t for a in acked for t in a}
    assert acked_all <= set(stored)  # every acknowledged comment is there
    assert set(stored) <= {t for s in sent for t in s}  # and nothing else
    assert len(stored) == len(set(stored))
    assert_thread_order(stored, acked)


DRAIN_DELAY_SECONDS = 3


def test_sigterm_drains_under_load_without_a_failed_request(
    backend: Backend, started: list[Server]
) -> None:
    """SIGTERM: readiness goes false at once while requests are still served for DRAIN_DELAY;
    clients that stop sending within it (the load balancer dropped the endpoint) see every
    request they sent answered 200, and every acknowledged write is stored."""
    store = backend.store_env()
    server = backend.server(store=store, WORKERS=2, DRAIN_DELAY=DRAIN_DELAY_SECONDS).start()
    started.append(server)
    cid = unique_id("drain")
    stop = threading.Event()
    acked: list[str] = []
    failures: list[str] = []

    def load(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        n = 0
        while not stop.is_set():
            body = {"email": "d@example.com", "comment": f"t{t}-{n}", "content_id": cid}
            try:
                reply = request(server.port, "POST", "/api/comment/new", json=body, conn=conn)
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
                continue
            if reply.status == 200:
                acked.append(body["comment"])
            else:
                failures.append(str(reply.status))
            n += 1
        conn.close()

    threads = [threading.Thread(target=load, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acked) < 300:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.proc is not None
    server.proc.terminate()
    deadline = time.monotonic() + 5
    while server.get("/readyz").status != 503:  # a new connection is still accepted
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.get("/readyz").json()["status"] == "DRAINING"
    before = len(acked)
    time.sleep(DRAIN_DELAY_SECONDS / 2)
    assert len(acked) > before  # still serving while draining
    stop.set()
    for thread in threads:
        thread.join(60)
    assert server.proc.wait(60) == 0
    assert failures == []

    restarted = backend.server(store=store, WORKERS=1).start()
    started.append(restarted)
    assert sorted(all_comments(restarted, cid)) == sorted(acked)


def test_readiness_follows_the_database(tmp_path_factory, started: list[Server]) -> None:
    from conftest import start_postgres

    pg: PostgresServer = start_postgres()
    try:
        backend = Backend("postgres", tmp_path_factory.mktemp("ready"), pg)
        server = backend.server(WORKERS=2, DB_TIMEOUT="2").start()
        started.append(server)
        cid = unique_id("ready")
        body = {"email": "r@example.com", "comment": "before", "content_id": cid}
        assert server.post(json=body).status == 200
        assert server.get("/readyz").status == 200

        pg.stop()
        deadline = time.monotonic() + 30
        while server.get("/readyz").status != 503:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        down = server.get("/readyz").json()
        assert down["status"] == "UNAVAILABLE"
        assert server.get("/healthz").status == 200  # alive, just not ready
        failed = server.post(json={**body, "comment": "during"})
        assert failed.status == 503
        assert failed.json()["status"] == "UNAVAILABLE"
        assert server.get(f"/api/comment/list/{cid}").status == 503

        pg.start()
        deadline = time.monotonic() + 30
        while server.get("/readyz").status != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for i in range(20):
            assert server.post(json={**body, "comment": f"after {i}"}).status == 200
        assert all_comments(server, cid) == ["before"] + [f"after {i}" for i in range(20)]
    finally:
        pg.destroy()
