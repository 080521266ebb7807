"""What the e2e run checks over the real load balancer, and the bounded retry around it.

The hosts are `<name>.<domain>` on a `.test` domain that resolves nowhere, so each request goes
to the NLB's own DNS name with the host in the `Host` header: no /etc/hosts needed. Right after
`pulumi up` the NLB's name may not resolve yet and its targets may not be healthy, so every
check is retried until it passes or a deadline passes.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

REQUEST_TIMEOUT_S = 10
# An NLB is usually reachable a few minutes after its Service has a hostname.
READY_DEADLINE_S = 15 * 60
RETRY_INTERVAL_S = 15
# What each login page's HTML holds (its <title>).
GRAFANA_LOGIN = ("/login", "<title>Grafana</title>")
ARGOCD_LOGIN = ("/login", "<title>Argo CD</title>")
COMMENT_EMAIL = "e2e@example.com"
# How much of an answer a report line shows.
DETAIL_CHARS = 300

T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Target:
    """Where the checks go: the NLB's DNS name, and each routed host name."""

    address: str
    comments: str
    grafana: str
    argocd: str

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> Target:
        def host(url: str) -> str:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"expected an http:// URL output, got {url!r}")
            return parts.hostname

        return cls(
            address=outputs["loadBalancerHostname"],
            comments=host(outputs["appUrls"]["comments"]),
            grafana=host(outputs["grafanaUrl"]),
            argocd=host(outputs["argocdUrl"]),
        )


def plain_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the stack outputs that are not secret: the checks need no secret, and
    nothing secret is ever printed."""
    return {name: output.value for name, output in outputs.items() if not output.secret}


def poll(
    attempt: Callable[[], T],
    done: Callable[[T], bool],
    deadline_s: float,
    interval_s: float = RETRY_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `attempt` until `done` says its result is final or `deadline_s` has passed; return
    the last result."""
    end = clock() + deadline_s
    while True:
        result = attempt()
        if done(result) or clock() >= end:
            return result
        sleep(interval_s)


def request(address: str, host: str, method: str, path: str, body: Any = None) -> tuple[int, str]:
    """One HTTP request to `address` (host[:port]) for `host`: its status and body."""
    headers = {"Host": host}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection(address, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def post_comment(target: Target, content_id: str, comment: str) -> Result:
    body = {"email": COMMENT_EMAIL, "comment": comment, "content_id": content_id}
    status, text = request(target.address, target.comments, "POST", "/api/comment/new", body)
    return Result(status == http.HTTPStatus.OK and '"SUCCESS"' in text, f"{status} {text}")


def comment_listed(target: Target, content_id: str, comment: str) -> Result:
    path = f"/api/comment/list/{quote(content_id, safe='')}"
    status, text = request(target.address, target.comments, "GET", path)
    if status != http.HTTPStatus.OK:
        return Result(False, f"{status} {text}")
    try:
        listed = json.loads(text)
    except ValueError:
        return Result(False, f"{status}, not JSON: {text}")
    if not isinstance(listed, list) or {"email": COMMENT_EMAIL, "comment": comment} not in listed:
        return Result(False, f"{status}, the comment is not in the list: {text}")
    return Result(True, f"{status}, listed back among {len(listed)} comment(s)")


def page_holds(address: str, host: str, page: tuple[str, str]) -> Result:
    path, marker = page
    status, text = request(address, host, "GET", path)
    if status != http.HTTPStatus.OK or marker not in text:
        return Result(False, f"{status} without {marker!r}: {text}")
    return Result(True, f"{status} with {marker!r}")


def plan(target: Target, content_id: str) -> list[tuple[str, Callable[[], Result]]]:
    """The checks, in order (listing the comment needs the post to have passed)."""
    comment = f"posted through the load balancer by the e2e check ({content_id})"
    return [
        ("comments API: post a comment", lambda: post_comment(target, content_id, comment)),
        ("comments API: list it back", lambda: comment_listed(target, content_id, comment)),
        ("Grafana login page", lambda: page_holds(target.address, target.grafana, GRAFANA_LOGIN)),
        ("Argo CD login page", lambda: page_holds(target.address, target.argocd, ARGOCD_LOGIN)),
    ]


def run_all(
    checks: list[tuple[str, Callable[[], Result]]],
    deadline_s: float = READY_DEADLINE_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Run the checks in order, retrying each; the failures, one line each (empty: all passed).

    The deadline is shared: it is the time the platform has to become reachable. Once it has
    passed, each remaining check gets one try, so a dead load balancer fails fast."""
    end = clock() + deadline_s
    failures: list[str] = []
    for name, check in checks:
        result = poll(
            lambda check=check: _attempt(check),
            lambda r: r.ok,
            max(0.0, end - clock()),
            clock=clock,
            sleep=sleep,
        )
        line = f"{name}: {result.detail[:DETAIL_CHARS]}"
        print(f"{'PASS' if result.ok else 'FAIL'} {line}", flush=True)
        if not result.ok:
            failures.append(line)
    return failures


def _attempt(check: Callable[[], Result]) -> Result:
    """A check whose network failure (no DNS yet, refused, timed out) is a failed Result."""
    try:
        return check()
    except (OSError, http.client.HTTPException) as error:
        return Result(False, f"{type(error).__name__}: {error}")
