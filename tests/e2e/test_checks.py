"""The checks made over the load balancer, against a local HTTP server standing in for it, and
the bounded retry, on a fake clock."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e import checks

DOMAIN = "e2e-1a2b3c.app-platform.test"
PAGES = {
    f"grafana.{DOMAIN}": "<html><head><title>Grafana</title></head></html>",
    f"argocd.{DOMAIN}": '<html lang="en"><head><title>Argo CD</title></head></html>',
}


class FakeEdge(BaseHTTPRequestHandler):
    """Routes by Host header like the Gateway: the comments API and two login pages."""

    comments: dict[str, list[dict[str, str]]]

    def do_GET(self):
        host = self.headers["Host"]
        if host in PAGES and self.path == "/login":
            return self.answer(200, PAGES[host], "text/html")
        prefix = "/api/comment/list/"
        if host == f"comments.{DOMAIN}" and self.path.startswith(prefix):
            listed = self.comments.get(self.path.removeprefix(prefix))
            if listed is not None:
                return self.answer(200, json.dumps(listed))
        return self.answer(404, '{"status": "NOT-FOUND"}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers["Host"] != f"comments.{DOMAIN}" or self.path != "/api/comment/new":
            return self.answer(404, '{"status": "NOT-FOUND"}')
        entry = {"email": body["email"], "comment": body["comment"]}
        self.comments.setdefault(str(body["content_id"]), []).append(entry)
        return self.answer(200, '{"status": "SUCCESS", "message": "comment created"}')

    def answer(self, status: int, body: str, kind: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def edge() -> Iterator[checks.Target]:
    handler = type("Edge", (FakeEdge,), {"comments": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield checks.Target(
        address=f"127.0.0.1:{server.server_port}",
        comments=f"comments.{DOMAIN}",
        grafana=f"grafana.{DOMAIN}",
        argocd=f"argocd.{DOMAIN}",
    )
    server.shutdown()
    server.server_close()


def closed_port() -> str:
    """An address on localhost where nothing listens: every request to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_every_check_passes_against_a_working_edge_routed_by_host_header(edge):
    clock = FakeClock()

    failures = checks.run_all(checks.plan(edge, "e2e-1a2b3c"), clock=clock, sleep=clock.sleep)

    assert failures == []
    assert clock.sleeps == []


def test_a_comment_that_is_not_listed_back_fails_the_round_trip(edge):
    assert checks.post_comment(edge, "content-1", "first").ok

    result = checks.comment_listed(edge, "content-1", "a different comment")

    assert not result.ok
    assert "not in the list" in result.detail


def test_a_page_without_its_login_title_fails(edge):
    result = checks.page_holds(edge.address, edge.grafana, ("/login", "<title>Argo CD</title>"))

    assert not result.ok
    assert result.detail.startswith("200 without")


def test_an_unreachable_edge_fails_each_check_once_the_shared_deadline_has_passed():
    target = checks.Target(closed_port(), "comments.x.test", "grafana.x.test", "argocd.x.test")
    clock = FakeClock()

    failures = checks.run_all(
        checks.plan(target, "c"), deadline_s=60, clock=clock, sleep=clock.sleep
    )

    assert [line.split(":")[0] for line in failures] == [
        "comments API",
        "comments API",
        "Grafana login page",
        "Argo CD login page",
    ]
    assert all("ConnectionRefusedError" in line for line in failures)
    # Retried until the deadline, then one try each for the checks after the first.
    assert sum(clock.sleeps) == 60


def test_poll_stops_at_the_first_final_result_or_at_the_deadline():
    clock = FakeClock()
    answers = iter([1, 2, 3, 4])

    assert checks.poll(lambda: next(answers), lambda n: n == 2, 100, 10, clock, clock.sleep) == 2
    assert clock.sleeps == [10]

    clock = FakeClock()
    assert checks.poll(lambda: "never", lambda _: False, 25, 10, clock, clock.sleep) == "never"
    assert clock.sleeps == [10, 10, 10]


def test_the_target_accepts_only_http_urls():
    outputs = {
        "loadBalancerHostname": "k8s-edge-0123.elb.us-east-1.amazonaws.com",
        "appUrls": {"comments": f"https://comments.{DOMAIN}"},
        "grafanaUrl": f"http://grafana.{DOMAIN}",
        "argocdUrl": f"http://argocd.{DOMAIN}",
    }
    with pytest.raises(ValueError, match="http://"):
        checks.Target.from_outputs(outputs)
