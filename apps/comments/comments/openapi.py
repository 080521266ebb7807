"""The OpenAPI 3.1 document served at /openapi.json, generated from the msgspec types in
validation.py that also validate every request (one contract; nothing written twice)."""

from __future__ import annotations

from typing import Any

import msgspec

from . import __version__
from .validation import (
    DEFAULT_PAGE_LIMIT,
    MAX_BODY_BYTES,
    Comment,
    ContentIdText,
    Created,
    Cursor,
    Error,
    IdempotencyKey,
    NewCommentRequest,
    PageLimit,
    Ready,
)

REF = "#/components/schemas/{name}"
IDEMPOTENCY_WINDOW_DOC = "the window of IDEMPOTENCY_WINDOW seconds (24 h by default)"


def _schema(kind: Any) -> dict[str, Any]:
    return msgspec.json.schema(kind)


def _json(ref: str, description: str, **extra: Any) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": REF.format(name=ref)}}}
    return {"description": description, "content": content, **extra}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return _json("Error", description, **extra)


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}
UNAVAILABLE = _error("Storage unavailable or overloaded; retry later.", headers=RETRY_AFTER)


def _new_comment() -> dict[str, Any]:
    return {
        "summary": "Create a comment",
        "operationId": "createComment",
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": (
                    "A retry with the same key within "
                    f"{IDEMPOTENCY_WINDOW_DOC} returns the first answer and stores nothing."
                ),
                "schema": _schema(IdempotencyKey),
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(name="NewCommentRequest")}}
            },
        },
        "responses": {
            "200": _json("Created", "Stored (committed) comment."),
            "400": _error("Body is not JSON or not a JSON object; bad Idempotency-Key."),
            "413": _error(f"Body larger than {MAX_BODY_BYTES} bytes."),
            "415": _error("Content-Type is not application/json."),
            "409": _error("The Idempotency-Key was used for a different comment."),
            "422": _error("A field is missing or invalid (see errors)."),
            "503": UNAVAILABLE,
        },
    }


def _list_comments() -> dict[str, Any]:
    limit = {**_schema(PageLimit), "default": DEFAULT_PAGE_LIMIT}
    page_headers = {
        "X-Next-Cursor": {
            "description": "Pass as after= for the next page.",
            "schema": {"type": "string"},
        },
        "Link": {"description": 'URL of the next page, rel="next".', "schema": {"type": "string"}},
    }
    return {
        "summary": "List the comments of a content_id, oldest first",
        "description": (
            "Without limit/after the whole list is returned. With either, one page is returned;"
            " X-Next-Cursor and Link (rel=next) are set when more comments follow."
        ),
        "operationId": "listComments",
        "parameters": [
            {
                "name": "content_id",
                "in": "path",
                "required": True,
                "schema": _schema(ContentIdText),
            },
            {"name": "limit", "in": "query", "required": False, "schema": limit},
            {"name": "after", "in": "query", "required": False, "schema": _schema(Cursor)},
        ],
        "responses": {
            "200": {
                "description": "Comments, oldest first.",
                "headers": page_headers,
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "items": {"$ref": REF.format(name="Comment")}}
                    }
                },
            },
            "400": _error("Invalid limit or after."),
            "404": _error("No comment for this content_id."),
            "503": UNAVAILABLE,
        },
    }


def _plain(summary: str, schema: dict[str, Any], media: str = "text/plain") -> dict[str, Any]:
    ok = {"description": summary, "content": {media: {"schema": schema}}}
    return {"get": {"summary": summary, "responses": {"200": ok}}}


def openapi_document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [NewCommentRequest, Comment, Created, Error, Ready], ref_template=REF
    )
    ready = {
        "get": {
            "summary": "Readiness: the database answers and the process is not draining",
            "responses": {"200": _json("Ready", "Ready."), "503": _error("Not ready.")},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Comments API",
            "version": __version__,
            "description": (
                "Stores comments per content_id. content_id may be sent as an integer or a "
                'string: 42 and "42" are the same content.'
            ),
        },
        "paths": {
            "/api/comment/new": {"post": _new_comment()},
            "/api/comment/list/{content_id}": {"get": _list_comments()},
            "/healthcheck": _plain("Liveness (original)", {"type": "string", "const": "OK"}),
            "/healthz": _plain("Liveness", {"type": "object"}, "application/json"),
            "/readyz": ready,
            "/metrics": _plain("Prometheus metrics (text format)", {"type": "string"}),
        },
        "components": {"schemas": components},
    }
