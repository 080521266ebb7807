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

import orjson

from . import metrics
from .listcache import ListCache
from .logs import AccessLog
from .openapi import openapi_document
from .settings import Settings
from .storage import Storage, StorageUnavailableError, create_storage
from .validation import (
    MAX_BODY_BYTES,
    InvalidInputError,
    normalise_content_id,
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


def json_response(status: int, payload: object, *headers: tuple[bytes, bytes]) -> Response:
    return Response(status, orjson.dumps(payload), JSON, headers)


def error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"status": code, "message": message})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, refused with 413 as soon as it exceeds MAX_BODY_BYTES."""
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
        self._openapi = orjson.dumps(openapi_document())
        cache_bytes = settings.list_cache_mb * 1024 * 1024
        self._list_cache = ListCache(cache_bytes) if cache_bytes else None
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
        metrics.IN_PROGRESS.inc()
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
            response = json_response(
                503,
                {"status": "UNAVAILABLE", "message": "storage unavailable, retry later"},
                (b"retry-after", b"1"),
            )
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
        # Bookkeeping first: a client that reads /metrics right after its response must
        # see that response counted. Sending only hands the bytes to the transport.
        self._finish(scope, route, response.status, started)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _finish(self, scope: Scope, route: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        metrics.IN_PROGRESS.dec()
        metrics.observe(scope["method"], route, status, elapsed)
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
        self.storage = create_storage(self.settings)
        await self.storage.start()
        log.info("worker started", extra={"backend": self.storage.backend})

    async def shutdown(self) -> None:
        """Runs after the server stopped accepting and in-flight requests finished."""
        if self.storage is not None:
            await self.storage.close()
        if self._access_log is not None:
            self._access_log.flush()
        metrics.worker_exited(os.getpid())
        log.info("worker stopped")

    # ------------------------------------------------------------------ handlers

    @staticmethod
    def _not_allowed(method: str, allowed: tuple[str, ...]) -> Response:
        return Response(
            405,
            orjson.dumps(
                {
                    "status": "METHOD-NOT-ALLOWED",
                    "message": f"method {method} not allowed; use {', '.join(allowed)}",
                }
            ),
            JSON,
            ((b"allow", ", ".join(allowed).encode()),),
        )

    async def new_comment(self, scope: Scope, receive: Receive) -> Response:
        content_type = _header(scope, b"content-type")
        media_type = (content_type or b"").split(b";", 1)[0].strip().lower()
        if media_type != JSON:
            raise InvalidInputError(
                415, "UNSUPPORTED-MEDIA-TYPE", "Content-Type must be application/json"
            )
        comment = parse_new_comment(await _read_body(scope, receive))
        assert self.storage is not None
        await self.storage.add(comment)
        metrics.COMMENTS_CREATED.inc()
        return json_response(
            200,
            {
                "status": "SUCCESS",
                "message": f"comment created and associated with content_id {comment.content_id}",
            },
        )

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
        cache = self._list_cache
        if cache is not None:
            entry = cache.get(content_id)
            if entry is not None and await storage.last_id(content_id) == entry[0]:
                metrics.LIST_CACHE_HITS.inc()
                return Response(200, entry[1])
        rows = await storage.list_all(content_id)
        if not rows:
            return self._not_found(content_id)
        body = orjson.dumps([{"email": e, "comment": c} for _, e, c in rows])
        if cache is not None:
            cache.put(content_id, rows[-1][0], len(rows), body)
        return Response(200, body)

    async def _list_page(
        self, storage: Storage, content_id: str, params: dict[str, list[str]]
    ) -> Response:
        limit, after = parse_page(params.get("limit", [""])[-1], params.get("after", [""])[-1])
        rows = await storage.list_page(content_id, after, limit + 1)
        if not rows and not (after and await storage.exists(content_id)):
            return self._not_found(content_id)
        headers: tuple[tuple[bytes, bytes], ...] = ()
        if len(rows) > limit:
            rows = rows[:limit]
            cursor = str(rows[-1][0])
            link = f"<{LIST_PREFIX}{quote(content_id, safe='')}?limit={limit}&after={cursor}>"
            headers = (
                (b"x-next-cursor", cursor.encode()),
                (b"link", f'{link}; rel="next"'.encode()),
            )
        body = orjson.dumps([{"email": e, "comment": c} for _, e, c in rows])
        return Response(200, body, JSON, headers)

    @staticmethod
    def _not_found(content_id: str) -> Response:
        return error(404, "NOT-FOUND", f"content_id {content_id} not found")

    async def healthcheck(self, scope: Scope, receive: Receive) -> Response:
        return Response(200, b"OK", TEXT)

    async def healthz(self, scope: Scope, receive: Receive) -> Response:
        return json_response(200, {"status": "OK"})

    async def readyz(self, scope: Scope, receive: Receive) -> Response:
        assert self.storage is not None
        try:
            await asyncio.wait_for(self.storage.ping(), self.settings.db_timeout)
        except (TimeoutError, StorageUnavailableError):
            return error(503, "UNAVAILABLE", "database unreachable")
        return json_response(200, {"status": "READY", "backend": self.storage.backend})

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
