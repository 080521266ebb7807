"""The request and response shapes, declared once as msgspec types.

The same declarations validate every request and generate the OpenAPI document (openapi.py),
so the document cannot drift from what the service accepts. Patterns are written to mean the
same under Python's `re` (which msgspec uses) and ECMA-262/Rust regex (what OpenAPI tools
use): explicit character classes instead of `\\s`, and `(?!\\n)$` where Python's `$` would
otherwise also match before a trailing newline.

The original stored whatever it was sent and crashed (HTTP 500) on anything unexpected. Here
every request is checked before it touches storage, and every problem is reported as a 4xx
with a JSON body naming the field, so a client can fix its request and nothing stored is
ever altered by a bad one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from msgspec import Meta

# Limits (documented in README.md). Bodies are capped before parsing; fields after.
MAX_BODY_BYTES = 64 * 1024  # room for a maximal comment even if every char is \\uXXXX-escaped
MAX_COMMENT_CHARS = 5000
MAX_EMAIL_CHARS = 254  # RFC 5321 forward-path limit
MAX_CONTENT_ID_CHARS = 128
DEFAULT_PAGE_LIMIT = 100  # used when only ?after= is given
MAX_PAGE_LIMIT = 1000
MAX_IDEMPOTENCY_KEY_CHARS = 255
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Deliberately simple: ASCII local part of at most 64 characters and a dotted domain of DNS
# labels.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^[A-Za-z0-9.!#$%&'*+=?^_`{{|}}~/-]{{1,64}}@(?:{_LABEL}\.)+{_LABEL}(?!\n)$"
# Not blank (some character other than ASCII whitespace) and no NUL anywhere.
COMMENT_PATTERN = r"^[^\x00]*[^\x00\t\n\x0b\x0c\r ][^\x00]*$"
# Anything that can be listed back through /api/comment/list/<content_id>: no '/', no
# control character, not '.' or '..' (URL dot segments).
CONTENT_ID_PATTERN = r"^(?!\.\.?$)[^/\x00-\x1f\x7f]+(?!\n)$"
CURSOR_PATTERN = r"^[0-9]{0,18}(?!\n)$"  # empty: from the start
# Visible ASCII, as in the IETF Idempotency-Key draft's string form.
IDEMPOTENCY_KEY_PATTERN = rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_CHARS}}}(?!\n)$"

Email = Annotated[
    str,
    Meta(
        max_length=MAX_EMAIL_CHARS,
        pattern=EMAIL_PATTERN,
        description="An address shaped local@domain.tld (ASCII local part).",
    ),
]
CommentText = Annotated[
    str,
    Meta(
        max_length=MAX_COMMENT_CHARS,
        pattern=COMMENT_PATTERN,
        description="Not blank, no NUL character.",
    ),
]
ContentIdText = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_CONTENT_ID_CHARS,
        pattern=CONTENT_ID_PATTERN,
        description="No '/', no control character, not '.' or '..'.",
    ),
]
ContentIdNumber = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
ContentId = ContentIdNumber | ContentIdText
PageLimit = Annotated[int, Meta(ge=1, le=MAX_PAGE_LIMIT)]
Cursor = Annotated[str, Meta(pattern=CURSOR_PATTERN, description="From X-Next-Cursor.")]
IdempotencyKey = Annotated[str, Meta(pattern=IDEMPOTENCY_KEY_PATTERN)]

# What a message says when a pattern does not match (msgspec would quote the regex).
_RULES = {
    "email": "must be a valid email address",
    "comment": "must not be blank nor contain NUL characters",
    "content_id": "must be printable characters without '/' (it is used in the URL)",
}


class NewCommentRequest(msgspec.Struct):
    """POST /api/comment/new. Unknown fields are ignored, as the original did."""

    email: Email
    comment: CommentText
    content_id: ContentId


class Comment(msgspec.Struct):
    email: str
    comment: str


class Created(msgspec.Struct):
    status: Literal["SUCCESS"]
    message: str


class FieldError(msgspec.Struct):
    field: str
    message: str


class Error(msgspec.Struct, omit_defaults=True):
    status: str
    message: str
    errors: list[FieldError] | None = None


class Ready(msgspec.Struct):
    status: str
    backend: str


class NewComment(NamedTuple):
    """A validated comment as stored; content_id is normalised to its string form."""

    content_id: str
    email: str
    comment: str


class InvalidInputError(Exception):
    """A request the client must fix: carries the HTTP status and the JSON error body."""

    def __init__(
        self, status: int, code: str, message: str, errors: list[FieldError] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> Error:
        return Error(self.code, self.message, self.errors or None)


_decode_new = msgspec.json.Decoder(NewCommentRequest).decode
FIELD_TYPES: dict[str, Any] = {"email": Email, "comment": CommentText, "content_id": ContentId}


def parse_new_comment(body: bytes) -> NewComment:
    """Parse and validate a POST /api/comment/new body, or raise InvalidInputError."""
    try:
        request = _decode_new(body)
    except msgspec.ValidationError:
        raise _explain(body) from None
    except msgspec.DecodeError as exc:
        raise _not_json(exc) from None
    return NewComment(str(request.content_id), request.email, request.comment)


def _not_json(exc: Exception) -> InvalidInputError:
    return InvalidInputError(400, "BAD-REQUEST", f"request body is not valid JSON: {exc}")


def _explain(body: bytes) -> InvalidInputError:
    """Every problem of a body that failed validation, field by field (the slow path)."""
    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:  # e.g. trailing data after a first object
        return _not_json(exc)
    if not isinstance(payload, dict):
        return InvalidInputError(400, "BAD-REQUEST", "request body must be a JSON object")
    errors: list[FieldError] = []
    for name, kind in FIELD_TYPES.items():
        if name not in payload:
            errors.append(FieldError(name, "is required"))
            continue
        try:
            msgspec.convert(payload[name], kind)
        except msgspec.ValidationError as exc:
            errors.append(FieldError(name, _field_message(name, str(exc))))
    detail = "; ".join(f"{e.field} {e.message}" for e in errors)
    return InvalidInputError(422, "INVALID", f"invalid comment: {detail}", errors)


def _field_message(name: str, error: str) -> str:
    if "regex" in error:
        return _RULES[name]
    # "Expected `str` of length <= 254" -> "expected `str` of length <= 254"
    return error[:1].lower() + error[1:]


def normalise_content_id(value: str) -> str:
    """The content_id of a list URL; ValueError if it could never have been stored."""
    try:
        return msgspec.convert(value, ContentIdText)
    except msgspec.ValidationError:
        raise ValueError(value) from None


def parse_page(limit: str | None, after: str | None) -> tuple[int, int]:
    """Validate ?limit=&after= and return (limit, after_id); after_id 0 means the start."""
    page_limit = DEFAULT_PAGE_LIMIT
    if limit is not None:
        if not (limit.isascii() and limit.isdigit() and len(limit) <= 6):
            raise _bad_limit()
        page_limit = int(limit)
        if not 1 <= page_limit <= MAX_PAGE_LIMIT:
            raise _bad_limit()
    if not after:
        return page_limit, 0
    try:
        return page_limit, int(msgspec.convert(after, Cursor))
    except msgspec.ValidationError:
        raise InvalidInputError(
            400, "BAD-REQUEST", "after must be a cursor from X-Next-Cursor"
        ) from None


def _bad_limit() -> InvalidInputError:
    return InvalidInputError(
        400, "BAD-REQUEST", f"limit must be an integer between 1 and {MAX_PAGE_LIMIT}"
    )


def parse_idempotency_key(value: bytes | None) -> str | None:
    """The Idempotency-Key header of a POST, or None when absent."""
    if value is None:
        return None
    try:
        return msgspec.convert(value.decode("latin-1"), IdempotencyKey)
    except msgspec.ValidationError:
        raise InvalidInputError(
            400,
            "BAD-REQUEST",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters",
        ) from None
