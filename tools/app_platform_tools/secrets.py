"""How a recording marks secret values, and the one walker that unwraps or hides them.

The offline runner records a Pulumi secret as `{"__secret__": value}` and a resource reference
as `{"__resource__": urn}` (`offline._plain`). Every tool that prints, dumps or compares a
recording goes through this module, so a secret is hidden the same way everywhere.

Standard library only: `plandiff` runs where nothing is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SECRET_KEY = "__secret__"  # noqa: S105 (a marker, not a secret)
RESOURCE_KEY = "__resource__"
# What a hidden value is shown as in plans, plan differences and test views.
REDACTED = "[secret]"


def mark(value: Any) -> dict[str, Any]:
    """`value` marked as a secret, as a recording holds it."""
    return {SECRET_KEY: value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SECRET_KEY}


def walk(
    value: Any,
    on_secret: Callable[[Any], Any],
    on_resource: Callable[[str], Any] | None = None,
) -> Any:
    """A copy of `value` with each secret replaced by `on_secret(its value)` and, if given, each
    resource reference by `on_resource(urn)`. `on_secret` gets the value under the marker as
    it is: it decides whether to walk into it."""
    if is_secret(value):
        return on_secret(value[SECRET_KEY])
    if isinstance(value, dict):
        if on_resource is not None and set(value) == {RESOURCE_KEY}:
            return on_resource(value[RESOURCE_KEY])
        return {k: walk(v, on_secret, on_resource) for k, v in value.items()}
    if isinstance(value, list):
        return [walk(v, on_secret, on_resource) for v in value]
    return value


def unwrap(value: Any) -> Any:
    """The plain values a program passed: every secret marker taken off."""
    return walk(value, unwrap)


def redact(value: Any, placeholder: Any = REDACTED) -> Any:
    """Every secret replaced whole by `placeholder`, so the result can be printed anywhere."""
    return walk(value, lambda _: placeholder)


def redact_leaves(value: Any, placeholder: Any = REDACTED) -> Any:
    """Every value below a secret marker replaced by `placeholder`, keeping the keys (a
    Kubernetes Secret's `stringData` keeps its variable names). None stays None."""
    return walk(value, lambda inner: _every_leaf(unwrap(inner), placeholder))


def _every_leaf(value: Any, placeholder: Any) -> Any:
    if isinstance(value, dict):
        return {k: _every_leaf(v, placeholder) for k, v in value.items()}
    if isinstance(value, list):
        return [_every_leaf(v, placeholder) for v in value]
    return None if value is None else placeholder


def redacted(value: Any, secret: bool, placeholder: Any = REDACTED) -> Any:
    """A stack output's value as it may be shown: `placeholder` when the output is secret."""
    return placeholder if secret else value
