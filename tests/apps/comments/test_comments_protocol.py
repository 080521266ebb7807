"""The HTTP protocol class on a recording transport: what reaches the socket, in which sends."""

from __future__ import annotations

import asyncio
from typing import Any

from comments.protocol import BoundedHttpToolsProtocol
from uvicorn.config import Config
from uvicorn.server import ServerState

GET = b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n"
HEAD = b"HEAD /x HTTP/1.1\r\nhost: t\r\n\r\n"
BODY = b'{"status":"OK"}'


class RecordingTransport(asyncio.Transport):
    """Records each send (write or writelines) as one entry."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.sends.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.sends.append(b"".join(chunks))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8080) if name in ("sockname", "peername") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def one_response(scope: Any, receive: Any, send: Any) -> None:
    length = str(len(BODY)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", length)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def streamed(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one", "more_body": True})
    await send({"type": "http.response.body", "body": b"two", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def serve(app: Any, *requests: bytes) -> RecordingTransport:
    """Feed the requests to one connection and return its transport once all are answered."""
    config = Config(app, lifespan="off", log_config=None)
    state = ServerState()
    protocol = BoundedHttpToolsProtocol(config=config, server_state=state, app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(b"".join(requests))
    for _ in range(100):
        await asyncio.sleep(0)
        if state.total_requests == len(requests):
            break
    protocol.connection_lost(None)
    return transport


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_head_and_body_of_a_response_leave_in_one_send() -> None:
    transport = run(serve(one_response, GET))
    assert len(transport.sends) == 1
    head, _, body = transport.sends[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == BODY


def test_pipelined_responses_keep_their_order_one_send_each() -> None:
    transport = run(serve(one_response, GET, GET, GET))
    assert len(transport.sends) == 3
    assert all(s.startswith(b"HTTP/1.1 200") and s.endswith(BODY) for s in transport.sends)


def test_a_head_response_is_sent_without_waiting_for_a_body() -> None:
    transport = run(serve(one_response, HEAD))
    assert len(transport.sends) == 1
    assert transport.sends[0].endswith(b"\r\n\r\n")
    assert transport.sends[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_only_the_head_waits_later_chunks_are_sent_at_once() -> None:
    transport = run(serve(streamed, GET))
    assert len(transport.sends) == 3  # head + first chunk, second chunk, terminator
    assert transport.sends[0].endswith(b"\r\n\r\n3\r\none\r\n")
    assert transport.sends[1] == b"3\r\ntwo\r\n"
    assert transport.sends[2] == b"0\r\n\r\n"
