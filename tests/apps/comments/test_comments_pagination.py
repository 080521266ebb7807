"""Optional ?limit=&after= pagination; the bare call keeps the original's shape."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from comments_testlib import Server, unique_id

# The documented page sizes (README "Limits"), pinned by value.
DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 1000


def seed(server: Server, count: int, prefix: str = "p") -> tuple[str, list[dict[str, str]]]:
    cid = unique_id(prefix)
    items = [{"email": f"u{i}@example.com", "comment": f"c{i}"} for i in range(count)]
    for item in items:
        assert server.post(json={**item, "content_id": cid}).status == 200
    return cid, items


def test_pages_walk_the_whole_list_in_order(shared_server: Server) -> None:
    cid, items = seed(shared_server, 25, "walk ü")
    pages: list[list[dict[str, str]]] = []
    path = f"/api/comment/list/{quote(cid)}?limit=10"
    while path:
        reply = shared_server.get(path)
        assert reply.status == 200
        page = reply.json()
        assert isinstance(page, list)
        pages.append(page)
        cursor = reply.headers.get("x-next-cursor")
        link = reply.headers.get("link")
        if cursor is None:
            assert link is None
            path = ""
        else:
            match = re.fullmatch(r'<([^>]+)>; rel="next"', link or "")
            assert match, link
            path = match.group(1)
            assert path.endswith(f"after={cursor}")
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [c for p in pages for c in p] == items


def test_exact_multiple_ends_without_cursor_after_last_full_page(shared_server: Server) -> None:
    cid, items = seed(shared_server, 4)
    first = shared_server.get(f"/api/comment/list/{cid}?limit=2")
    second = shared_server.get(
        f"/api/comment/list/{cid}?limit=2&after={first.headers['x-next-cursor']}"
    )
    assert first.json() + second.json() == items
    assert "x-next-cursor" not in second.headers


def test_bare_call_is_the_whole_plain_array(shared_server: Server) -> None:
    cid, items = seed(shared_server, 3)
    reply = shared_server.get(f"/api/comment/list/{cid}?unrelated=1")
    assert reply.json() == items
    assert "x-next-cursor" not in reply.headers


def test_after_alone_uses_the_default_limit(shared_server: Server) -> None:
    cid, items = seed(shared_server, DEFAULT_PAGE_LIMIT + 1)
    reply = shared_server.get(f"/api/comment/list/{cid}?after=")
    assert reply.json() == items[:DEFAULT_PAGE_LIMIT]
    assert "x-next-cursor" in reply.headers


def test_past_the_end_is_an_empty_page_but_unknown_id_is_404(shared_server: Server) -> None:
    cid, _ = seed(shared_server, 1)
    first = shared_server.get(f"/api/comment/list/{cid}?limit=1")
    assert "x-next-cursor" not in first.headers
    # a cursor beyond the last comment of an existing id: empty page
    reply = shared_server.get(f"/api/comment/list/{cid}?after=999999999999")
    assert (reply.status, reply.json()) == (200, [])
    missing = unique_id("missing")
    reply = shared_server.get(f"/api/comment/list/{missing}?limit=5")
    assert reply.status == 404
    assert reply.json() == {"status": "NOT-FOUND", "message": f"content_id {missing} not found"}


def test_limit_at_the_cap_is_accepted(shared_server: Server) -> None:
    cid, items = seed(shared_server, 2)
    assert shared_server.get(f"/api/comment/list/{cid}?limit={MAX_PAGE_LIMIT}").json() == items


@pytest.mark.parametrize(
    "query",
    [
        f"limit={MAX_PAGE_LIMIT + 1}",
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=%C2%B2",  # a Unicode digit
        "after=abc",
        "after=-5",
        "after=1e3",
        "after=" + "9" * 30,
    ],
)
def test_bad_page_parameters_are_400(shared_server: Server, query: str) -> None:
    cid, _ = seed(shared_server, 1)
    reply = shared_server.get(f"/api/comment/list/{cid}?{query}")
    assert reply.status == 400, reply.body
    body = reply.json()
    assert body["status"] == "BAD-REQUEST"
    assert "limit" in body["message"] or "after" in body["message"]
