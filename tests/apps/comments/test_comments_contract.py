"""The original API's contract, unchanged, on SQLite and PostgreSQL."""

from __future__ import annotations

from comments_testlib import Backend, Server, metric, unique_id


def post_comment(server: Server, content_id: object, email: str, comment: str) -> None:
    reply = server.post(json={"email": email, "comment": comment, "content_id": content_id})
    assert reply.status == 200, reply.body


def test_healthcheck_is_plain_ok(shared_server: Server) -> None:
    reply = shared_server.get("/healthcheck")
    assert reply.status == 200
    assert reply.body == b"OK"


def test_create_returns_the_original_message(shared_server: Server) -> None:
    cid = unique_id()
    reply = shared_server.post(json={"email": "a@example.com", "comment": "hi", "content_id": cid})
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == {
        "status": "SUCCESS",
        "message": f"comment created and associated with content_id {cid}",
    }


def test_list_returns_comments_in_insertion_order(shared_server: Server) -> None:
    cid = unique_id()
    expected = [{"email": f"user{i}@example.com", "comment": f"comment {i}"} for i in range(12)]
    for item in expected:
        post_comment(shared_server, cid, item["email"], item["comment"])
    reply = shared_server.get(f"/api/comment/list/{cid}")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == expected
    assert "x-next-cursor" not in reply.headers and "link" not in reply.headers


def test_numeric_and_string_content_id_are_the_same_content(shared_server: Server) -> None:
    number = int(unique_id("").replace("-", "")[-15:])
    reply = shared_server.post(
        json={"email": "n@example.com", "comment": "as number", "content_id": number}
    )
    assert reply.json()["message"] == f"comment created and associated with content_id {number}"
    post_comment(shared_server, str(number), "s@example.com", "as string")
    listed = shared_server.get(f"/api/comment/list/{number}").json()
    assert listed == [
        {"email": "n@example.com", "comment": "as number"},
        {"email": "s@example.com", "comment": "as string"},
    ]


def test_unknown_content_id_is_404_with_the_original_body(shared_server: Server) -> None:
    cid = unique_id("missing")
    reply = shared_server.get(f"/api/comment/list/{cid}")
    assert reply.status == 404
    assert reply.json() == {"status": "NOT-FOUND", "message": f"content_id {cid} not found"}


def test_text_round_trips_exactly(shared_server: Server) -> None:
    cid = unique_id("ütf ✓")
    comment = 'Olá, "mundo"! \\ 🚀 \n second line\ttab <b>&amp;</b>'
    post_comment(shared_server, cid, "o'brien+tag@sub.example.org", comment)
    from urllib.parse import quote

    listed = shared_server.get(f"/api/comment/list/{quote(cid)}").json()
    assert listed == [{"email": "o'brien+tag@sub.example.org", "comment": comment}]


def test_extra_fields_are_ignored(shared_server: Server) -> None:
    cid = unique_id()
    reply = shared_server.post(
        json={"email": "a@example.com", "comment": "x", "content_id": cid, "extra": [1, 2]}
    )
    assert reply.status == 200
    assert shared_server.get(f"/api/comment/list/{cid}").json() == [
        {"email": "a@example.com", "comment": "x"}
    ]


def test_charset_parameter_on_json_content_type_is_accepted(shared_server: Server) -> None:
    cid = unique_id()
    body = f'{{"email": "a@example.com", "comment": "x", "content_id": "{cid}"}}'.encode()
    reply = shared_server.post(
        body=body, headers={"Content-Type": "Application/JSON; charset=utf-8"}
    )
    assert reply.status == 200, reply.body


def test_head_is_answered_without_a_body(shared_server: Server) -> None:
    from comments_testlib import request

    reply = request(shared_server.port, "HEAD", "/healthcheck")
    assert reply.status == 200
    assert reply.body == b""


def test_a_list_read_anywhere_includes_every_acknowledged_write(
    backend: Backend, started: list[Server]
) -> None:
    """Two servers on one store (two pods, two workers each): a read sent to either, after a
    write was acknowledged by either, includes that write, also under concurrent reads that
    keep the list cached (SQLite), for plain and keyed writes alike."""
    import threading

    store = backend.store_env()
    pods = [backend.server(store=store, WORKERS=2).start() for _ in range(2)]
    started.extend(pods)
    cid = unique_id("anywhere")
    expected: list[str] = []
    stale: list[tuple[int, int]] = []

    def reader(pod: Server, stop: threading.Event) -> None:
        while not stop.is_set():  # background readers keep the read batches full
            pod.get(f"/api/comment/list/{cid}")

    stop = threading.Event()
    readers = [threading.Thread(target=reader, args=(p, stop)) for p in pods for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for n in range(120):
            writer, other = pods[n % 2], pods[(n + 1) % 2]
            body = {"email": "w@example.com", "comment": f"n{n}", "content_id": cid}
            key = {"Idempotency-Key": f"{cid}-{n}"} if n % 3 == 0 else {}
            assert writer.post(json=body, headers=key).status == 200
            expected.append(f"n{n}")
            for pod in (other, writer):
                listed = [c["comment"] for c in pod.get(f"/api/comment/list/{cid}").json()]
                if listed != expected:
                    stale.append((n, len(listed)))
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert stale == []
    hits = [
        metric(pod.get("/metrics").body.decode(), "comments_list_cache_hits_total") for pod in pods
    ]
    if backend.name == "sqlite":  # the reads above were served from the caches too
        assert min(hits) > 100
    else:  # replicas on other hosts share PostgreSQL: no process can know its list is current
        assert hits == [0, 0]
