"""The HTTP application: a small raw ASGI app.

Seven fixed routes do not need a framework; dispatching on the path directly keeps the work
per request small (see BENCHMARKS.md). Every handler returns a Response; the dispatcher sends
it and does the per-request bookkeeping (access log line, metrics) in one place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote

import msgspec

from . import metrics
from .drain import Drain
from .logs import AccessLog, logging_off_the_loop
from .openapi import openapi_document
from .settings import Settings
from .storage import KeyReusedError, Storage, StorageUnavailableError, create_storage
from .validation import (
    MAX_BODY_BYTES,
    Created,
    Error,
    InvalidInputError,
    Ready,
    normalise_content_id,
    parse_idempotency_key,
    parse_new_comment,
    parse_page,
)

log = logging.getLogger("comments.app")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

NEW_PATH = "/api/comment/new"
LIST_PREFIX = "/api/comment/list/"
LIST_ROUTE = "/api/comment/list/{content_id}"

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


class ClientGoneError(Exception):
    """The client disconnected before sending its whole request."""


_encode = msgspec.json.encode
RETRY_AFTER = (b"retry-after", b"1")
CLOSE = (b"connection", b"close")


def json_response(status: int, payload: object, *headers: tuple[bytes, bytes]) -> Response:
    return Response(status, _encode(payload), JSON, headers)


def error(status: int, code: str, message: str, *headers: tuple[bytes, bytes]) -> Response:
    return json_response(status, Error(code, message), *headers)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class BodyTimeoutError(Exception):
    """The client did not send its whole body in time."""


async def _read_body(scope: Scope, receive: Receive, timeout: float) -> bytes:
    """The request body, refused with 413 as soon as it exceeds MAX_BODY_BYTES and with 408
    unless it has all arrived within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await _receive_body(scope, receive)
    except TimeoutError:
        raise BodyTimeoutError from None


async def _receive_body(scope: Scope, receive: Receive) -> bytes:
    too_large = InvalidInputError(
        413, "TOO-LARGE", f"request body must be at most {MAX_BODY_BYTES} bytes"
    )
    length = _header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


class CommentsApp:
    """ASGI application; one instance per worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage: Storage | None = None
        self._openapi = _encode(openapi_document())
        self.drain = Drain()
        self._restore_logging: Callable[[], None] | None = None
        # Access lines are info-level: LOG_LEVEL=warning or ACCESS_LOG=false turns them off.
        self._access_log = (
            AccessLog() if settings.access_log and settings.log_level in ("debug", "info") else None
        )
        # path -> (route label, allowed methods, handler) for the fixed paths
        self._routes: dict[str, tuple[str, tuple[str, ...], Callable[..., Awaitable[Response]]]]
        self._routes = {
            NEW_PATH: (NEW_PATH, ("POST",), self.new_comment),
            "/healthcheck": ("/healthcheck", ("GET", "HEAD"), self.healthcheck),
            "/healthz": ("/healthz", ("GET", "HEAD"), self.healthz),
            "/readyz": ("/readyz", ("GET", "HEAD"), self.readyz),
            "/metrics": ("/metrics", ("GET", "HEAD"), self.metrics),
            "/openapi.json": ("/openapi.json", ("GET", "HEAD"), self.openapi),
        }

    # ------------------------------------------------------------------ ASGI entry points

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        metrics.request_started()
        method: str = scope["method"]
        path: str = scope["path"]
        route = "unmatched"
        try:
            entry = self._routes.get(path)
            if entry is not None:
                route, allowed, handler = entry
                if method in allowed:
                    response = await handler(scope, receive)
                else:
                    response = self._not_allowed(method, allowed)
            elif path.startswith(LIST_PREFIX):
                route = LIST_ROUTE
                if method in ("GET", "HEAD"):
                    response = await self.list_comments(scope, path[len(LIST_PREFIX) :])
                else:
                    response = self._not_allowed(method, ("GET", "HEAD"))
            else:
                response = error(404, "NOT-FOUND", f"no route for {path}")
        except InvalidInputError as exc:
            response = json_response(exc.status, exc.body())
        except StorageUnavailableError as exc:
            log.warning("storage unavailable", extra={"error": str(exc), "route": route})
            response = error(503, "UNAVAILABLE", "storage unavailable, retry later", RETRY_AFTER)
        except KeyReusedError:
            message = "Idempotency-Key was already used for a different comment"
            response = error(409, "IDEMPOTENCY-KEY-REUSED", message)
        except BodyTimeoutError:
            message = f"request body not received within {self.settings.body_timeout:g} s"
            response = error(408, "REQUEST-TIMEOUT", message, CLOSE)
        except ClientGoneError:
            self._finish(scope, route, 499, started)
            return
        except Exception:
            log.exception("unhandled error", extra={"route": route, "path": path})
            response = error(500, "ERROR", "internal error")

        headers = [
            (b"content-type", response.content_type),
            (b"content-length", str(len(response.body)).encode()),
            *response.headers,
        ]
        if self.drain.draining:  # clients reconnect, to other pods once this one is gone
            headers.append(CLOSE)
        # Bookkeeping first: a client that reads /metrics right after its response must
        # see that response counted. Sending only hands the bytes to the transport.
        self._finish(scope, route, response.status, started)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _finish(self, scope: Scope, route: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        metrics.request_finished(scope["method"], route, status, elapsed)
        if self._access_log is not None:
            client = scope.get("client")
            self._access_log.write(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": client[0] if client else None,
                }
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        if self.settings.workers > 1:  # we are a child of the launcher
            _exit_with_parent()
        self._restore_logging = logging_off_the_loop()
        self.drain.install(self.settings.drain_delay)
        self.storage = create_storage(self.settings)
        await self.storage.start()
        log.info("worker started", extra={"backend": self.storage.backend})

    async def shutdown(self) -> None:
        """Runs after the server stopped accepting and in-flight requests finished."""
        if self.storage is not None:
            await self.storage.close()
        if self._access_log is not None:
            self._access_log.close()
        metrics.worker_exited(os.getpid())
        log.info("worker stopped")
        if self._restore_logging is not None:
            self._restore_logging()

    # ------------------------------------------------------------------ handlers

    @staticmethod
    def _not_allowed(method: str, allowed: tuple[str, ...]) -> Response:
        message = f"method {method} not allowed; use {', '.join(allowed)}"
        allow = (b"allow", ", ".join(allowed).encode())
        return error(405, "METHOD-NOT-ALLOWED", message, allow)

    async def new_comment(self, scope: Scope, receive: Receive) -> Response:
        content_type = _header(scope, b"content-type")
        media_type = (content_type or b"").split(b";", 1)[0].strip().lower()
        if media_type != JSON:
            raise InvalidInputError(
                415, "UNSUPPORTED-MEDIA-TYPE", "Content-Type must be application/json"
            )
        key = parse_idempotency_key(_header(scope, b"idempotency-key"))
        body = await _read_body(scope, receive, self.settings.body_timeout)
        comment = parse_new_comment(body)
        assert self.storage is not None
        content_id = await self.storage.add(comment, key)
        metrics.comment_created()
        message = f"comment created and associated with content_id {content_id}"
        return json_response(200, Created("SUCCESS", message))

    async def list_comments(self, scope: Scope, content_id: str) -> Response:
        storage = self.storage
        assert storage is not None
        try:
            normalise_content_id(content_id)
        except ValueError:  # could never have been stored (and PostgreSQL rejects NUL)
            return self._not_found(content_id)
        query: bytes = scope["query_string"]
        if query:
            params = parse_qs(query.decode("latin-1"), keep_blank_values=True)
            if "limit" in params or "after" in params:
                return await self._list_page(storage, content_id, params)
        body = await storage.list_json(content_id)
        if body is None:
            return self._not_found(content_id)
        return Response(200, body)

    async def _list_page(
        self, storage: Storage, content_id: str, params: dict[str, list[str]]
    ) -> Response:
        limit = params["limit"][-1] if "limit" in params else None
        page_limit, after = parse_page(limit, params.get("after", [""])[-1])
        page = await storage.page(content_id, after, page_limit)
        if not page.exists:
            return self._not_found(content_id)
        headers: tuple[tuple[bytes, bytes], ...] = ()
        if page.more:
            cursor = str(page.last_id)
            link = f"<{LIST_PREFIX}{quote(content_id, safe='')}?limit={page_limit}&after={cursor}>"
            headers = (
                (b"x-next-cursor", cursor.encode()),
                (b"link", f'{link}; rel="next"'.encode()),
            )
        return Response(200, page.body, JSON, headers)

    @staticmethod
    def _not_found(content_id: str) -> Response:
        return error(404, "NOT-FOUND", f"content_id {content_id} not found")

    async def healthcheck(self, scope: Scope, receive: Receive) -> Response:
        return Response(200, b"OK", TEXT)

    async def healthz(self, scope: Scope, receive: Receive) -> Response:
        return Response(200, b'{"status":"OK"}')

    async def readyz(self, scope: Scope, receive: Receive) -> Response:
        assert self.storage is not None
        if self.drain.draining:
            return error(503, "DRAINING", "shutting down; send new requests elsewhere")
        try:
            await asyncio.wait_for(self.storage.ping(), self.settings.db_timeout)
        except (TimeoutError, StorageUnavailableError):
            return error(503, "UNAVAILABLE", "database unreachable", RETRY_AFTER)
        return json_response(200, Ready("READY", self.storage.backend))

    async def metrics(self, scope: Scope, receive: Receive) -> Response:
        return Response(200, metrics.render(), metrics.CONTENT_TYPE.encode())

    async def openapi(self, scope: Scope, receive: Receive) -> Response:
        return Response(200, self._openapi)


def _exit_with_parent() -> None:
    """Ask Linux to SIGTERM this worker if the launcher dies (e.g. SIGKILL), so no orphaned
    worker keeps the port. Best effort: a no-op elsewhere."""
    if os.getppid() == 1:
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass


def create_app() -> CommentsApp:
    """Factory used by the launcher (uvicorn imports it in every worker)."""
    return CommentsApp(Settings.from_env())
