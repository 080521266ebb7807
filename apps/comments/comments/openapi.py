"""The OpenAPI 3.1 description served at /openapi.json, written by hand from the contract."""

from __future__ import annotations

from typing import Any

from . import __version__
from .validation import (
    DEFAULT_PAGE_LIMIT,
    MAX_BODY_BYTES,
    MAX_COMMENT_CHARS,
    MAX_CONTENT_ID_CHARS,
    MAX_EMAIL_CHARS,
    MAX_PAGE_LIMIT,
)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document() -> dict[str, Any]:
    plain_ok = {
        "description": "The process is alive.",
        "content": {"text/plain": {"schema": {"type": "string", "const": "OK"}}},
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
            "/api/comment/new": {
                "post": {
                    "summary": "Create a comment",
                    "operationId": "createComment",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/NewComment"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Stored (committed) comment.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Created"}
                                }
                            },
                        },
                        "400": _error("Body is not JSON or not a JSON object."),
                        "405": _error("Method not allowed."),
                        "413": _error(f"Body larger than {MAX_BODY_BYTES} bytes."),
                        "415": _error("Content-Type is not application/json."),
                        "422": _error("A field is missing or invalid (see errors)."),
                        "503": _error("Storage unavailable; retry later."),
                    },
                }
            },
            "/api/comment/list/{content_id}": {
                "get": {
                    "summary": "List the comments of a content_id, oldest first",
                    "description": (
                        "Without limit/after the whole list is returned. With either, one "
                        "page is returned; X-Next-Cursor and Link (rel=next) are set when "
                        "more comments follow."
                    ),
                    "operationId": "listComments",
                    "parameters": [
                        {
                            "name": "content_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "maxLength": MAX_CONTENT_ID_CHARS},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_PAGE_LIMIT,
                                "default": DEFAULT_PAGE_LIMIT,
                            },
                        },
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "description": "Opaque cursor from X-Next-Cursor.",
                            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "Comments, oldest first.",
                            "headers": {
                                "X-Next-Cursor": {
                                    "description": "Pass as after= to get the next page.",
                                    "schema": {"type": "string"},
                                },
                                "Link": {
                                    "description": 'URL of the next page, rel="next".',
                                    "schema": {"type": "string"},
                                },
                            },
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Comment"},
                                    }
                                }
                            },
                        },
                        "400": _error("Invalid limit or after."),
                        "404": _error("No comment for this content_id."),
                        "503": _error("Storage unavailable; retry later."),
                    },
                }
            },
            "/healthcheck": {
                "get": {"summary": "Liveness (original)", "responses": {"200": plain_ok}}
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "Alive."}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: the database answers",
                    "responses": {
                        "200": {"description": "Ready."},
                        "503": _error("Database unreachable."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text format)",
                    "responses": {"200": {"description": "Metrics."}},
                }
            },
        },
        "components": {
            "schemas": {
                "NewComment": {
                    "type": "object",
                    "required": ["email", "comment", "content_id"],
                    "properties": {
                        "email": {
                            "type": "string",
                            "format": "email",
                            "maxLength": MAX_EMAIL_CHARS,
                        },
                        "comment": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_COMMENT_CHARS,
                        },
                        "content_id": {
                            "oneOf": [
                                {"type": "integer"},
                                {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": MAX_CONTENT_ID_CHARS,
                                    "pattern": "^[^/]+$",
                                },
                            ]
                        },
                    },
                },
                "Comment": {
                    "type": "object",
                    "required": ["email", "comment"],
                    "properties": {"email": {"type": "string"}, "comment": {"type": "string"}},
                },
                "Created": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {
                        "status": {"type": "string", "const": "SUCCESS"},
                        "message": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {
                        "status": {"type": "string"},
                        "message": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "field": {"type": "string"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            }
        },
    }
