"""Bad input: always a clear 4xx with a JSON body, never a 5xx, and nothing stored changes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from comments_testlib import Reply, Server, request, unique_id

# The documented limits (README "Limits"), pinned by value: changing one is a contract change.
MAX_BODY_BYTES = 65536
MAX_COMMENT_CHARS = 5000
MAX_EMAIL_CHARS = 254
MAX_CONTENT_ID_CHARS = 128

GOOD = {"email": "good@example.com", "comment": "fine", "content_id": "placeholder"}


def assert_error(reply: Reply, status: int, code: str, field: str | None = None) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["status"] == code
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
        assert field in body["message"]


@pytest.fixture(scope="module")
def victim(shared_server: Server) -> tuple[str, list[dict[str, str]]]:
    """A content_id with comments, which every bad request below also targets."""
    cid = unique_id("victim")
    stored = [{"email": f"v{i}@example.com", "comment": f"kept {i}"} for i in range(3)]
    for item in stored:
        assert shared_server.post(json={**item, "content_id": cid}).status == 200
    return cid, stored


@pytest.fixture(autouse=True)
def nothing_changes(shared_server: Server, victim: tuple[str, list[dict[str, str]]]) -> Any:
    yield
    cid, stored = victim
    assert shared_server.get(f"/api/comment/list/{cid}").json() == stored


def with_field(victim_id: str, **changes: Any) -> dict[str, Any]:
    payload = {**GOOD, "content_id": victim_id}
    for key, value in changes.items():
        if value is _MISSING:
            payload.pop(key)
        else:
            payload[key] = value
    return payload


_MISSING = object()


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"email": "a@b.co",}', b"not json", b"\xff\xfe", b'{"a": NaN}', b"{}{}"],
    ids=["empty", "truncated", "trailing-comma", "text", "not-utf8", "nan", "two-docs"],
)
def test_malformed_json_is_400(shared_server: Server, body: bytes) -> None:
    reply = shared_server.post(body=body, headers={"Content-Type": "application/json"})
    assert_error(reply, 400, "BAD-REQUEST")
    assert "JSON" in reply.json()["message"]


def test_lone_surrogate_is_400(shared_server: Server, victim: Any) -> None:
    body = b'{"email": "a@b.co", "comment": "\\ud800", "content_id": "%s"}' % victim[0].encode()
    assert_error(
        shared_server.post(body=body, headers={"Content-Type": "application/json"}),
        400,
        "BAD-REQUEST",
    )


@pytest.mark.parametrize("payload", [[], [GOOD], "text", 42, None, True])
def test_body_that_is_not_an_object_is_400(shared_server: Server, payload: Any) -> None:
    reply = shared_server.post(
        body=orjson.dumps(payload), headers={"Content-Type": "application/json"}
    )
    assert_error(reply, 400, "BAD-REQUEST")
    assert reply.json()["message"] == "request body must be a JSON object"


@pytest.mark.parametrize("field", ["email", "comment", "content_id"])
def test_missing_field_is_422(shared_server: Server, victim: Any, field: str) -> None:
    reply = shared_server.post(json=with_field(victim[0], **{field: _MISSING}))
    assert_error(reply, 422, "INVALID", field)
    assert {"field": field, "message": "is required"} in reply.json()["errors"]


def test_all_problems_are_reported_at_once(shared_server: Server) -> None:
    reply = shared_server.post(json={"email": 1})
    assert_error(reply, 422, "INVALID")
    assert [e["field"] for e in reply.json()["errors"]] == ["email", "comment", "content_id"]


@pytest.mark.parametrize("field", ["email", "comment"])
@pytest.mark.parametrize("value", [7, 1.5, ["a@b.co"], {"x": "y"}, None, True])
def test_wrong_type_is_422(shared_server: Server, victim: Any, field: str, value: Any) -> None:
    reply = shared_server.post(json=with_field(victim[0], **{field: value}))
    assert_error(reply, 422, "INVALID", field)


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "@example.com",
        "user@",
        "user@localhost",
        "two@@example.com",
        "sp ace@example.com",
        "user@exa mple.com",
        "user@-example.com",
        "user@example..com",
        "a" * 65 + "@example.com",
        "u@" + "a" * (MAX_EMAIL_CHARS) + ".com",
        "nul\x00@example.com",
    ],
)
def test_invalid_email_is_422(shared_server: Server, victim: Any, email: str) -> None:
    assert_error(
        shared_server.post(json=with_field(victim[0], email=email)), 422, "INVALID", "email"
    )


@pytest.mark.parametrize(
    "comment",
    ["", "   ", "\n\t ", "x" * (MAX_COMMENT_CHARS + 1), "nul \x00 inside"],
    ids=["empty", "spaces", "whitespace", "oversized", "nul"],
)
def test_bad_comment_is_422(shared_server: Server, victim: Any, comment: str) -> None:
    reply = shared_server.post(json=with_field(victim[0], comment=comment))
    assert_error(reply, 422, "INVALID", "comment")


def test_comment_at_the_limit_is_accepted(shared_server: Server) -> None:
    cid = unique_id()
    comment = "é" * MAX_COMMENT_CHARS
    assert shared_server.post(json={**GOOD, "content_id": cid, "comment": comment}).status == 200
    assert shared_server.get(f"/api/comment/list/{cid}").json()[0]["comment"] == comment


@pytest.mark.parametrize(
    "content_id",
    [
        None,
        True,
        False,
        4.2,
        42.0,
        10**30,
        [1],
        {"id": 1},
        "",
        "x" * (MAX_CONTENT_ID_CHARS + 1),
        "a/b",
        ".",
        "..",
        "tab\tinside",
        "nul\x00",
    ],
    ids=lambda v: repr(v)[:20],
)
def test_unusable_content_id_is_422(shared_server: Server, content_id: Any) -> None:
    reply = shared_server.post(json={**GOOD, "content_id": content_id})
    assert_error(reply, 422, "INVALID", "content_id")


def test_content_id_at_the_limit_is_accepted(shared_server: Server) -> None:
    cid = unique_id("L")
    cid = cid + "x" * (MAX_CONTENT_ID_CHARS - len(cid))
    assert shared_server.post(json={**GOOD, "content_id": cid}).status == 200
    assert shared_server.get(f"/api/comment/list/{cid}").status == 200


def test_oversized_body_is_413(shared_server: Server, victim: Any) -> None:
    payload = with_field(victim[0], comment="x" * (MAX_BODY_BYTES + 10))
    assert_error(shared_server.post(json=payload), 413, "TOO-LARGE")


def test_oversized_chunked_body_is_413(shared_server: Server, victim: Any) -> None:
    payload = orjson.dumps(with_field(victim[0], comment="x" * (MAX_BODY_BYTES + 10)))

    def chunks() -> Any:
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/api/comment/new",
            body=chunks(),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert_error(
            Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()),
            413,
            "TOO-LARGE",
        )
    finally:
        conn.close()


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json"],
)
def test_wrong_content_type_is_415(
    shared_server: Server, victim: Any, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = orjson.dumps(with_field(victim[0]))
    reply = shared_server.post(body=body, headers=headers)
    assert_error(reply, 415, "UNSUPPORTED-MEDIA-TYPE")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/comment/new", "POST"),
        ("PUT", "/api/comment/new", "POST"),
        ("DELETE", "/api/comment/new", "POST"),
        ("POST", "/api/comment/list/1", "GET, HEAD"),
        ("DELETE", "/api/comment/list/1", "GET, HEAD"),
        ("POST", "/healthcheck", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405(shared_server: Server, method: str, path: str, allow: str) -> None:
    reply = request(shared_server.port, method, path)
    assert_error(reply, 405, "METHOD-NOT-ALLOWED")
    assert reply.headers["allow"] == allow


@pytest.mark.parametrize("path", ["/", "/api/comment", "/api/comment/list/a/b", "/nope"])
def test_unknown_route_is_404_json(shared_server: Server, path: str) -> None:
    assert_error(shared_server.get(path), 404, "NOT-FOUND")


@pytest.mark.parametrize(
    "content_id", ["%00", "tab%09", "x" * (MAX_CONTENT_ID_CHARS + 1), "..%2F..", "%FF"]
)
def test_listing_an_impossible_content_id_is_404(shared_server: Server, content_id: str) -> None:
    assert_error(shared_server.get(f"/api/comment/list/{content_id}"), 404, "NOT-FOUND")


def test_the_openapi_document_states_the_documented_limits(shared_server: Server) -> None:
    doc = shared_server.get("/openapi.json").json()
    fields = doc["components"]["schemas"]["NewCommentRequest"]["properties"]
    assert fields["comment"]["maxLength"] == MAX_COMMENT_CHARS
    assert fields["email"]["maxLength"] == MAX_EMAIL_CHARS
    as_text = next(s for s in fields["content_id"]["anyOf"] if s["type"] == "string")
    assert as_text["maxLength"] == MAX_CONTENT_ID_CHARS
    assert f"{MAX_BODY_BYTES} bytes" in str(doc["paths"]["/api/comment/new"]["post"]["responses"])
    listing = doc["paths"]["/api/comment/list/{content_id}"]["get"]["parameters"]
    limit = next(p for p in listing if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 1000, 100)
