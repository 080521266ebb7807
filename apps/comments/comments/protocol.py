"""uvicorn's httptools protocol with the limits a hostile or broken client needs.

uvicorn bounds neither how long a client may take to send its request head nor how large
that head may be, and accepts any number of connections; a client that sends half a header
would hold its connection (and memory) forever. Per connection this adds:

* a header timeout: the head must be complete within HEADER_TIMEOUT of the connection
  opening or of the request's first byte (else 408 and the connection is closed);
* a head size limit: more than MAX_HEADER_BYTES before the head is complete is a 431;
* a connection limit per worker: over MAX_CONNECTIONS a new connection is closed at once;
* a drain-friendly shutdown: a request whose head is still arriving is finished, and an
  idle connection gets DRAIN_IDLE_GRACE to start one, instead of being cut mid-request;
* one send per response: uvicorn writes a response's head and its body separately, two
  send system calls (and two segments for the client to read) where one does.

The body read timeout is the app's (app.py), which can answer it with a JSON 408.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from .settings import Settings

# Seconds an idle connection gets at shutdown to start a request before it is closed.
DRAIN_IDLE_GRACE = 1.0

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@functools.cache
def _settings() -> Settings:
    """The worker's settings (read once; uvicorn builds the protocol from its own config)."""
    return Settings.from_env()


def raw_error(status: int, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection."""
    body = orjson.dumps({"status": code, "message": message})
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))
    )
    return head + body


class HeadWithBodyTransport:
    """The connection's transport, except that a response's head is held until the next
    write (its body) so both leave in one send. Every other write, and close(), sends what
    is held first, so bytes keep their order; the protocol flushes at the end of each
    response (a HEAD response has no body write)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._held_cycle: object = None  # the response whose head was held last
        self.responding: RequestResponseCycle | None = None  # set by the protocol

    def write(self, data: bytes) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.writelines((held, data))
            return
        cycle = self.responding
        starting = cycle is not None and cycle.response_started and not cycle.response_complete
        if starting and cycle is not self._held_cycle:  # the first write of a response
            self._held_cycle = cycle
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = _settings()
        self._max_head = settings.max_header_bytes
        self._head_timeout = settings.header_timeout
        self._max_connections = settings.max_connections
        self._head_bytes = 0  # bytes received of a request head not yet complete
        self._in_head = True  # waiting for (the rest of) a request head
        self._head_timer: asyncio.TimerHandle | None = None
        self._draining = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = HeadWithBodyTransport(transport)  # type: ignore[assignment]
        if len(self.connections) > self._max_connections:
            self.logger.warning("connection limit reached; closing a new connection")
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self._max_head:
            message = f"request head larger than {self._max_head} bytes"
            self._reject(431, "HEADERS-TOO-LARGE", message)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next is the head of another request

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # Pipelined requests are parsed ahead: the cycle that writes is the one started.
        self.transport.responding = cycle  # type: ignore[attr-defined]
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()

    def shutdown(self) -> None:
        self._draining = True
        if self._idle():
            # Its request may be on the wire already: give it a moment to arrive.
            self.loop.call_later(DRAIN_IDLE_GRACE, self._close_if_idle)
        elif self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
        # else: a request head is arriving; on_headers_complete marks it the last one

    def _idle(self) -> bool:
        no_request = self.cycle is None or self.cycle.response_complete
        return no_request and self._in_head and self._head_bytes == 0

    def _close_if_idle(self) -> None:
        if self._idle() and not self.transport.is_closing():
            self.transport.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head:
            return
        if self._head_bytes == 0 and self.cycle is not None:
            return  # an idle keep-alive connection: uvicorn's keep-alive timeout owns it
        message = f"request head not received within {self._head_timeout:g} s"
        self._reject(408, "REQUEST-TIMEOUT", message)

    def _reject(self, status: int, code: str, message: str) -> None:
        if self.transport.is_closing():
            return
        self._in_head = False
        busy = self.cycle is not None and not self.cycle.response_complete
        if not busy:  # never write into the middle of another response
            self.transport.write(raw_error(status, code, message))
        self.transport.close()
