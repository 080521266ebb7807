"""Slow and oversized clients: each limit is met by a real client socket that misbehaves,
while another client is served as usual."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from comments_testlib import Backend, Server

# Documented defaults (README, Settings), pinned by value.
DEFAULTS = {
    "HEADER_TIMEOUT": 10.0,
    "BODY_TIMEOUT": 10.0,
    "MAX_HEADER_BYTES": 16384,
    "MAX_CONNECTIONS": 1000,
    "KEEPALIVE_TIMEOUT": 5,
}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker with short limits, so each test sees them quickly."""
    backend = Backend("sqlite", tmp_path_factory.mktemp("strict"), None)
    server = backend.server(
        WORKERS=1, HEADER_TIMEOUT=1, BODY_TIMEOUT=1, KEEPALIVE_TIMEOUT=1, MAX_CONNECTIONS=6
    ).start()
    yield server
    server.stop()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def assert_others_served(server: Server) -> None:
    started = time.monotonic()
    assert server.get("/healthz", timeout=5).status == 200
    assert time.monotonic() - started < 2


def test_defaults_are_documented_values() -> None:
    from comments.settings import Settings

    settings = Settings.from_env({})
    assert settings.header_timeout == DEFAULTS["HEADER_TIMEOUT"]
    assert settings.body_timeout == DEFAULTS["BODY_TIMEOUT"]
    assert settings.max_header_bytes == DEFAULTS["MAX_HEADER_BYTES"]
    assert settings.max_connections == DEFAULTS["MAX_CONNECTIONS"]
    assert settings.keepalive_timeout == DEFAULTS["KEEPALIVE_TIMEOUT"]


def test_half_a_header_gets_408_and_is_closed(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert_others_served(strict)
        started = time.monotonic()
        response = read_all(sock)
        assert time.monotonic() - started < 5
    assert response.startswith(b"HTTP/1.1 408 "), response
    assert b'"REQUEST-TIMEOUT"' in response


def test_a_connection_that_sends_nothing_is_closed(strict: Server) -> None:
    with connect(strict) as sock:
        started = time.monotonic()
        response = read_all(sock)
        assert time.monotonic() - started < 5
    assert response == b"" or response.startswith(b"HTTP/1.1 408 ")


def test_half_a_body_gets_408_and_is_closed(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(
            b"POST /api/comment/new HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"email": '
        )
        assert_others_served(strict)
        response = read_all(sock)
    assert response.startswith(b"HTTP/1.1 408 "), response
    assert b'"REQUEST-TIMEOUT"' in response and b"connection: close" in response.lower()


def test_an_8_mb_header_gets_431(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(8 * 16):  # 8 MiB in 64 KiB pieces; the server stops us early
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_all(sock)
    assert response.startswith(b"HTTP/1.1 431 "), response[:200]
    assert_others_served(strict)


def test_a_header_within_the_limit_is_accepted(strict: Server) -> None:
    reply = strict.get("/healthz", headers={"X-Padding": "p" * 12000})
    assert reply.status == 200


def test_connections_over_the_limit_are_closed_at_once(strict: Server) -> None:
    idle = [connect(strict) for _ in range(6)]  # the limit of this one worker
    try:
        time.sleep(0.2)
        with connect(strict) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            started = time.monotonic()
            assert read_all(extra) == b""
            assert time.monotonic() - started < 2
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert_others_served(strict)


def test_an_idle_keep_alive_connection_is_closed(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        response = read_all(sock)  # the answer, then the close after KEEPALIVE_TIMEOUT
        elapsed = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 200 ")
    assert 0.5 < elapsed < 5
