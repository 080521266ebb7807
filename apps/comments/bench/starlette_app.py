"""The comments service on Starlette, for the framework comparison in BENCHMARKS.md.

Same server stack, storage, validation, metrics and access log as comments.app; Starlette
does the routing, 404/405 answers, request and response objects, error mapping and lifespan.
Run it like the service: `python -m bench.starlette_app` from apps/comments (needs
bench/requirements.txt).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from comments import app as core_app
from comments import metrics
from comments.settings import Settings
from comments.storage import KeyReusedError, StorageUnavailableError
from comments.validation import InvalidInputError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _to_starlette(response: core_app.Response) -> Response:
    headers = {k.decode(): v.decode() for k, v in response.headers}
    return Response(response.body, response.status, headers, response.content_type.decode())


def create_app() -> Starlette:
    core = core_app.CommentsApp(Settings.from_env())

    def endpoint(handler: Any) -> Any:
        async def run(request: Request) -> Response:
            return _to_starlette(await handler(request.scope, request.receive))

        return run

    async def list_comments(request: Request) -> Response:
        content_id = request.path_params["content_id"]
        return _to_starlette(await core.list_comments(request.scope, content_id))

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidInputError)
        return _to_starlette(core_app.json_response(exc.status, exc.body()))

    async def unavailable(request: Request, exc: Exception) -> Response:
        reply = core_app.error(503, "UNAVAILABLE", "storage unavailable, retry later")
        return _to_starlette(reply._replace(headers=(core_app.RETRY_AFTER,)))

    async def reused(request: Request, exc: Exception) -> Response:
        return _to_starlette(core_app.error(409, "IDEMPOTENCY-KEY-REUSED", "key reused"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "NOT-FOUND", 405: "METHOD-NOT-ALLOWED"}.get(exc.status_code, "ERROR")
        reply = core_app.error(exc.status_code, code, str(exc.detail))
        return _to_starlette(
            reply._replace(
                headers=tuple((k.encode(), v.encode()) for k, v in (exc.headers or {}).items())
            )
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await core.startup()
        yield
        await core.shutdown()

    get = ["GET", "HEAD"]
    routes = [
        Route("/api/comment/new", endpoint(core.new_comment), methods=["POST"]),
        Route("/api/comment/list/{content_id}", list_comments, methods=get),
        Route("/healthcheck", endpoint(core.healthcheck), methods=get),
        Route("/healthz", endpoint(core.healthz), methods=get),
        Route("/readyz", endpoint(core.readyz), methods=get),
        Route("/metrics", endpoint(core.metrics), methods=get),
        Route("/openapi.json", endpoint(core.openapi), methods=get),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            InvalidInputError: invalid,
            StorageUnavailableError: unavailable,
            KeyReusedError: reused,
            HTTPException: http_error,
        },
    )
    return _Bookkeeping(app, core)


class _Bookkeeping:
    """The per-request metrics and access line, as comments.app does them."""

    def __init__(self, app: Starlette, core: core_app.CommentsApp) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        metrics.IN_PROGRESS.inc()
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = scope.get("route")
                label = route.path if route is not None else "unmatched"
                self.core._finish(scope, label, status, started)
            await send(message)

        await self.app(scope, receive, send_status)


if __name__ == "__main__":
    import sys

    from comments.__main__ import main

    sys.exit(main(factory="bench.starlette_app:create_app"))
