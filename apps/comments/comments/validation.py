"""Input limits and validation.

The original stored whatever it was sent and crashed (HTTP 500) on anything unexpected. Here
every request is checked before it touches storage, and every problem is reported as a 4xx
with a JSON body naming the field, so a client can fix its request and nothing stored is
ever altered by a bad one.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import orjson

# Limits (documented in README.md). Bodies are capped before parsing; fields after.
MAX_BODY_BYTES = 64 * 1024  # room for a maximal comment even if every char is \\uXXXX-escaped
MAX_COMMENT_CHARS = 5000
MAX_EMAIL_CHARS = 254  # RFC 5321 forward-path limit
MAX_CONTENT_ID_CHARS = 128
DEFAULT_PAGE_LIMIT = 100  # used when only ?after= is given
MAX_PAGE_LIMIT = 1000

# Deliberately simple: ASCII local part and a dotted domain of DNS labels.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+=?^_`{|}~/-]{1,64}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
_CURSOR_RE = re.compile(r"[0-9]{1,18}")
_LIMIT_RE = re.compile(r"[0-9]{1,6}")


class NewComment(NamedTuple):
    """A validated comment; content_id is already normalised to its string form."""

    content_id: str
    email: str
    comment: str


class InvalidInputError(Exception):
    """A request the client must fix: carries the HTTP status and the JSON error body."""

    def __init__(
        self, status: int, code: str, message: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"status": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


def normalise_content_id(value: object) -> str:
    """Return the string form of a content_id, which is how it is stored and looked up.

    The original used str(value), so 42 and "42" are the same content; that is kept for
    integers and strings. Anything that could not be listed back through
    /api/comment/list/<content_id> is refused.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError("must be a string or an integer")
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_CONTENT_ID_CHARS:
        raise ValueError(f"must be at most {MAX_CONTENT_ID_CHARS} characters")
    if "/" in text or not text.isprintable() or text in (".", ".."):
        raise ValueError("must be printable characters without '/' (it is used in the URL)")
    return text


def _check_email(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > MAX_EMAIL_CHARS:
        raise ValueError(f"must be at most {MAX_EMAIL_CHARS} characters")
    if not _EMAIL_RE.fullmatch(value):
        raise ValueError("must be a valid email address")
    return value


def _check_comment(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not value.strip():
        raise ValueError("must not be empty")
    if len(value) > MAX_COMMENT_CHARS:
        raise ValueError(f"must be at most {MAX_COMMENT_CHARS} characters")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


_CHECKS = (
    ("email", _check_email),
    ("comment", _check_comment),
    ("content_id", normalise_content_id),
)


def parse_new_comment(body: bytes) -> NewComment:
    """Parse and validate a POST /api/comment/new body, or raise InvalidInputError."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = f"request body is not valid JSON: {exc}"
        raise InvalidInputError(400, "BAD-REQUEST", message) from None
    if not isinstance(payload, dict):
        raise InvalidInputError(400, "BAD-REQUEST", "request body must be a JSON object")
    errors: list[dict[str, str]] = []
    values: list[str] = []
    for name, check in _CHECKS:
        if name not in payload:
            errors.append({"field": name, "message": "is required"})
            continue
        try:
            values.append(check(payload[name]))
        except ValueError as exc:
            errors.append({"field": name, "message": str(exc)})
    if errors:
        detail = "; ".join(f"{e['field']} {e['message']}" for e in errors)
        raise InvalidInputError(422, "INVALID", f"invalid comment: {detail}", errors)
    email, comment, content_id = values
    return NewComment(content_id, email, comment)


def parse_page(limit: str | None, after: str | None) -> tuple[int, int]:
    """Validate ?limit=&after= and return (limit, after_id); after_id 0 means the start."""
    if not limit:
        page_limit = DEFAULT_PAGE_LIMIT
    elif _LIMIT_RE.fullmatch(limit) and 1 <= int(limit) <= MAX_PAGE_LIMIT:
        page_limit = int(limit)
    else:
        raise InvalidInputError(
            400, "BAD-REQUEST", f"limit must be an integer between 1 and {MAX_PAGE_LIMIT}"
        )
    if not after:
        return page_limit, 0
    if not _CURSOR_RE.fullmatch(after):
        raise InvalidInputError(400, "BAD-REQUEST", "after must be a cursor from X-Next-Cursor")
    return page_limit, int(after)
