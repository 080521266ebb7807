"""Faults: safe retries with Idempotency-Key, and a PostgreSQL outage under load that must
give only 503s (never a 500) and lose or duplicate nothing that clients retried."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
from comments_testlib import Backend, PostgresServer, Server, request, unique_id

# The window in which a retry with the same key is recognised (README: IDEMPOTENCY_WINDOW).
DEFAULT_WINDOW_SECONDS = 86400


def post(server: Server, body: dict, key: str | None = None, **kw) -> object:
    headers = {"Idempotency-Key": key} if key else {}
    return server.post(json=body, headers=headers, **kw)


def test_a_retry_with_the_same_key_stores_nothing_new_on_any_process(
    backend: Backend, started: list[Server]
) -> None:
    store = backend.store_env()
    pods = [backend.server(store=store, WORKERS=2).start() for _ in range(2)]
    started.extend(pods)
    cid = unique_id("idem")
    body = {"email": "i@example.com", "comment": "once", "content_id": cid}
    first = post(pods[0], body, key="key-" + cid)
    assert first.status == 200
    for pod in pods * 3:  # every worker of both servers
        again = post(pod, body, key="key-" + cid)
        assert (again.status, again.json()) == (200, first.json())
    assert pods[1].get(f"/api/comment/list/{cid}").json() == [
        {"email": "i@example.com", "comment": "once"}
    ]
    # the same key for another comment is a conflict, and stores nothing either
    other = post(pods[1], {**body, "comment": "twice"}, key="key-" + cid)
    assert other.status == 409
    assert other.json()["status"] == "IDEMPOTENCY-KEY-REUSED"
    # another key stores another comment
    assert post(pods[1], body, key="other-" + cid).status == 200
    assert len(pods[0].get(f"/api/comment/list/{cid}").json()) == 2


def test_a_key_is_forgotten_after_its_window(backend: Backend, started: list[Server]) -> None:
    server = backend.server(IDEMPOTENCY_WINDOW="1").start()
    started.append(server)
    cid = unique_id("window")
    body = {"email": "w@example.com", "comment": "again later", "content_id": cid}
    assert post(server, body, key="k-" + cid).status == 200
    time.sleep(1.5)
    assert post(server, body, key="k-" + cid).status == 200
    assert len(server.get(f"/api/comment/list/{cid}").json()) == 2


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there"])
def test_a_malformed_key_is_400(shared_server: Server, key: str) -> None:
    cid = unique_id("badkey")
    body = {"email": "b@example.com", "comment": "x", "content_id": cid}
    reply = request(
        shared_server.port, "POST", "/api/comment/new", json=body, headers={"Idempotency-Key": key}
    )
    assert reply.status == 400, reply.body
    assert "Idempotency-Key" in reply.json()["message"]
    assert shared_server.get(f"/api/comment/list/{cid}").status == 404


def _load(server: Server, cid: str, stop: threading.Event, out: dict, t: int) -> None:
    """Post keyed comments and read the list until stopped; retry every failed post with its
    key until it is acknowledged, as a careful client would."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    n = 0
    while not stop.is_set():
        text = f"t{t}-{n}"
        body = {"email": f"t{t}@example.com", "comment": text, "content_id": cid}
        while True:
            try:
                reply = request(
                    server.port,
                    "POST",
                    "/api/comment/new",
                    json=body,
                    headers={"Idempotency-Key": f"{cid}-{text}"},
                    conn=conn,
                )
            except (OSError, http.client.HTTPException):
                conn.close()
                out["transport"] += 1
                continue
            out["status"][reply.status] = out["status"].get(reply.status, 0) + 1
            if reply.status == 200:
                out["acked"].append(text)
                break
            if reply.status == 503:
                out["well_formed_503"] &= (
                    reply.json()["status"] == "UNAVAILABLE" and "retry-after" in reply.headers
                )
            time.sleep(0.05)
        listed = request(server.port, "GET", f"/api/comment/list/{cid}", conn=conn)
        out["status"][listed.status] = out["status"].get(listed.status, 0) + 1
        n += 1
    conn.close()


def test_postgres_outage_under_load_is_503_only_and_loses_nothing(
    tmp_path_factory, started: list[Server]
) -> None:
    from conftest import start_postgres

    pg: PostgresServer = start_postgres()
    try:
        backend = Backend("postgres", tmp_path_factory.mktemp("outage"), pg)
        server = backend.server(WORKERS=2, DB_TIMEOUT="2").start()
        started.append(server)
        cid = unique_id("outage")
        stop = threading.Event()
        out: dict = {"status": {}, "acked": [], "transport": 0, "well_formed_503": True}
        threads = [
            threading.Thread(target=_load, args=(server, cid, stop, out, t)) for t in range(8)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        pg.stop()  # fast shutdown: every connection is cut, mid-transaction or not
        time.sleep(3)
        pg.start()
        time.sleep(2)  # clients retry until their posts are acknowledged
        stop.set()
        for thread in threads:
            thread.join(120)
        statuses = out["status"]
        assert statuses.get(503, 0) > 0, statuses  # the outage was seen
        errors = [line for line in server.logs().splitlines() if "unhandled error" in line]
        assert set(statuses) <= {200, 503}, (statuses, errors[:3])  # never a 500 nor other
        assert out["well_formed_503"]
        assert out["transport"] == 0
        listed = [c["comment"] for c in server.get(f"/api/comment/list/{cid}").json()]
        assert sorted(listed) == sorted(out["acked"])  # nothing lost, nothing twice
        assert len(listed) == len(set(listed))
        assert "unhandled error" not in server.logs()
    finally:
        pg.destroy()


def test_a_full_write_queue_answers_503_at_once(backend: Backend, started: list[Server]) -> None:
    """With room for one queued comment per worker, a burst of concurrent posts gets some
    well-formed 503s instead of waiting; every 200 is stored, nothing else is."""
    server = backend.server(WORKERS=1, WRITE_QUEUE_MAX=1, ACCESS_LOG="false").start()
    started.append(server)
    cid = unique_id("full")
    results: list[tuple[int, str, str]] = []

    def burst(t: int) -> None:
        for n in range(10):
            text = f"t{t}-{n}"
            body = {"email": "q@example.com", "comment": text, "content_id": cid}
            reply = server.post(json=body)
            code = reply.json()["status"] if reply.status != 200 else ""
            results.append((reply.status, text, code + reply.headers.get("retry-after", "")))

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    refused = [r for r in results if r[0] != 200]
    assert refused, "the queue never filled"
    assert {r[0] for r in refused} == {503}
    assert {r[2] for r in refused} == {"UNAVAILABLE1"}
    stored = [c["comment"] for c in server.get(f"/api/comment/list/{cid}").json()]
    assert sorted(stored) == sorted(r[1] for r in results if r[0] == 200)
