"""The base of every component's options: typed, validated once, explained in one voice.

Each component owns an options model (a pydantic model derived from `Options`) with its defaults,
descriptions and rules. Building one, from code or from stack config, either succeeds or raises
`OptionsError` with every problem at once, each naming where it is, the value and what is
accepted:

    NetworkOptions(nat_mode="perAZ")
    -> 'nat_mode' = "perAZ" is not valid: expected single, perAz or instance

Fields carry the stack config key as their alias, so `config.py` validates the same models by
config key and the same sentence names the key instead: `'natGateways' = "perAZ" ...`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Annotated, Any, Self

import pulumi
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    model_validator,
)

# How pydantic's error types read in this project's voice; `{…}` fields come from the error's
# context. Types not listed keep pydantic's own sentence.
_ACCEPTED = {
    "literal_error": "{expected}",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "greater_than_equal": "at least {ge}",
    "greater_than": "more than {gt}",
    "less_than_equal": "at most {le}",
    "less_than": "less than {lt}",
    "too_short": "at least {min_length} item(s)",
    "too_long": "at most {max_length} item(s)",
    "string_too_short": "at least {min_length} character(s)",
    "string_too_long": "at most {max_length} character(s)",
    "string_pattern_mismatch": "a value matching {pattern}",
}


@dataclass(frozen=True)
class Problem:
    """One wrong value: where it is (a field path or a config key), the value, what is accepted."""

    where: str
    value: Any
    accepted: str
    secret: bool = False

    def __str__(self) -> str:
        if self.accepted == "set":
            return f"'{self.where}' is not set"
        shown = "[secret]" if self.secret else json.dumps(self.value, default=str)
        return f"'{self.where}' = {shown} is not valid: expected {self.accepted}"


class OptionsError(pulumi.RunError, ValueError):
    """Every problem found in a set of options, one per line; Pulumi prints it cleanly."""

    def __init__(self, problems: Iterable[Problem], heading: str = "invalid options"):
        self.problems = tuple(problems)
        super().__init__(f"{heading}:\n  - " + "\n  - ".join(map(str, self.problems)))


def _accepted(error: Mapping[str, Any]) -> str:
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        # Our own validators raise ValueError("expected ...") / ValueError("...").
        message = str(context.get("error", error["msg"]))
        return message.removeprefix("expected ")
    template = _ACCEPTED.get(kind)
    if template is None:
        return error["msg"]
    values = {k: str(v).replace("'", "") for k, v in context.items()}
    return template.format(**values) if values or "{" not in template else template


def problems(error: ValidationError, *, secret_fields: Iterable[str] = ()) -> list[Problem]:
    """The problems of a pydantic ValidationError, each at its dotted location. A nested
    options model that failed contributes its own problems, under the field that holds it."""
    secrets = set(secret_fields)
    found: list[Problem] = []
    for item in error.errors(include_url=False):
        where = ".".join(map(str, item["loc"]))
        nested = (item.get("ctx") or {}).get("error")
        if isinstance(nested, OptionsError):
            found += [under(where, problem) for problem in nested.problems]
            continue
        accepted = "set" if item["type"] == "missing" else _accepted(item)
        if item["type"] == "extra_forbidden":
            accepted = "no such key"
        # A rule across fields names the model as a whole.
        found.append(Problem(where or "options", item.get("input"), accepted, where in secrets))
    return found


def under(prefix: str, problem: Problem) -> Problem:
    """`problem` as seen from the object that holds it at `prefix` (e.g. `apps.comments`)."""
    if not prefix:
        return problem
    where = prefix if problem.where == "options" else f"{prefix}.{problem.where}"
    return Problem(where, problem.value, problem.accepted, problem.secret)


# Set while options are validated from stack config: `config: True` (problems name config
# keys) and what the caller passed for validators, such as the project directory.
_CONTEXT: ContextVar[Mapping[str, Any] | None] = ContextVar("options_context", default=None)


def validation_context() -> Mapping[str, Any]:
    """What `from_config(..., context=)` passed, plus `config: True`; empty when built in code.
    Validators use it to name config keys and to find the project (`base_dir`)."""
    return _CONTEXT.get() or {}


def _field_path(model: type[BaseModel], where: str) -> str:
    """`where` by field names: pydantic names a missing field by its alias (the config key),
    which code that builds options does not use."""
    names = []
    for part in where.split("."):
        fields = getattr(model, "model_fields", {})
        name = next((n for n, info in fields.items() if info.alias == part), part)
        names.append(name)
        model = getattr(fields.get(name), "annotation", None)
    return ".".join(names)


def _is_secret(field: Any) -> bool:
    """Fields marked `Field(json_schema_extra={"secret": True})` are never echoed."""
    return bool((field.json_schema_extra or {}).get("secret"))


class Options(BaseModel):
    """Frozen, no unknown fields, built by field name (code) or by alias (stack config)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, validate_default=True
    )

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            found = problems(error, secret_fields=type(self)._secret_keys())
            if not validation_context().get("config"):
                found = [replace(p, where=_field_path(type(self), p.where)) for p in found]
            raise OptionsError(
                found,
                f"invalid {type(self).__name__}",
            ) from None

    @classmethod
    def _secret_keys(cls) -> list[str]:
        """Names and config keys of the fields whose values are never echoed."""
        return [
            key
            for name, info in cls.model_fields.items()
            if _is_secret(info)
            for key in (name, info.alias)
            if key
        ]

    @classmethod
    def key(cls, name: str) -> str:
        """Field `name` as the user wrote it: its config key while validating stack config,
        its field name when built from code (for problems found across fields)."""
        if validation_context().get("config"):
            return cls.model_fields[name].alias or name
        return name

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        """The stack config keys this model reads (its fields' aliases)."""
        return tuple(info.alias or name for name, info in cls.model_fields.items())

    @classmethod
    def from_config(
        cls,
        raw: Mapping[str, Any],
        *,
        prefix: str = "",
        context: Mapping[str, Any] | None = None,
    ) -> Self:
        """Validate values keyed by config key (the aliases); problems name those keys, under
        `prefix` (e.g. `apps.comments`). `context` is for validators (`validation_context`)."""
        token = _CONTEXT.set({**(context or {}), "config": True})
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            found = [
                under(prefix, problem)
                for problem in problems(error, secret_fields=cls._secret_keys())
            ]
            raise OptionsError(found, "invalid stack configuration") from None
        finally:
            _CONTEXT.reset(token)


class StrictOptions(Options):
    """Options whose unknown keys are refused with the list of the keys known (nested objects of
    stack config, where a typo should say what was meant)."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        keys = [info.alias or name for name, info in cls.model_fields.items()]
        unknown = sorted(set(data) - {*keys, *cls.model_fields}) if isinstance(data, dict) else []
        if unknown:
            raise ValueError(f"expected only the keys {', '.join(keys)} (unknown: {unknown})")
        return data


# Stack config hands every value over as a string ("3", "true", '["a"]'); code hands plain
# values. These types take both, strictly (pydantic's own lax bool would take "yes"), and say
# what they accept in the project's words.


def _config_bool(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _config_list(value: Any) -> Any:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


ConfigBool = Annotated[bool, BeforeValidator(_config_bool)]
StringList = Annotated[tuple[str, ...], BeforeValidator(_config_list)]


def as_int(value: Any) -> int | None:
    """A whole number from code (3) or as config hands it over ("3"); None for anything else,
    booleans included."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def whole_number(low: int, high: int, *, optional: bool = False) -> Any:
    """An int from `low` to `high`, from code or as config's string ("3"); None allowed when
    `optional`."""

    def parse(value: Any) -> int | None:
        if optional and value is None:
            return None
        parsed = as_int(value)
        if parsed is None or not low <= parsed <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return parsed

    return Annotated[int | None if optional else int, BeforeValidator(parse)]


def one_of(values: Iterable[str], accepted: str | None = None) -> Any:
    """A string among `values`; the message lists them ("single or perAz") unless `accepted`."""
    allowed = tuple(values)
    expected = accepted or " or ".join(allowed)

    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"expected {expected}")
        return value

    return Annotated[str, BeforeValidator(check)]


def checked(where: str, kind: Any, value: Any, owner: str) -> Any:
    """`value` validated as the annotated type `kind`, for arguments that are not an options
    model (a component's Args): the same sentence, naming `where`, as a model would give."""
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as error:
        found = [under(where, problem) for problem in problems(error)]
        raise OptionsError(found, f"invalid {owner}") from None


def matching(
    pattern: re.Pattern[str], accepted: str, *, also: Any = None, empty: bool = False
) -> Any:
    """A string matching `pattern` (and passing `also`, when given), or "" when `empty` says
    so (an unset optional key); else "expected <accepted>"."""

    def check(value: Any) -> str:
        if empty and value == "":
            return value
        ok = isinstance(value, str) and pattern.fullmatch(value) and (also is None or also(value))
        if not ok:
            raise ValueError(f"expected {accepted}")
        return value

    return Annotated[str, BeforeValidator(check)]


def password(min_length: int) -> Any:
    """An optional secret: empty means "generate one". A Pulumi Output (from code) is checked by
    whoever made it. Mark the field `json_schema_extra={"secret": True}` so it is never shown."""

    def check(value: Any) -> Any:
        if value in (None, "") or isinstance(value, pulumi.Output):
            return value or None
        if not isinstance(value, str) or len(value) < min_length:
            raise ValueError(
                f"expected at least {min_length} characters, or leave it unset to have one "
                "generated"
            )
        return value

    return Annotated[Any, BeforeValidator(check)]


SECRET: dict[str, Any] = {"secret": True}
# Admin logins (Argo CD, Grafana) given by config: long enough not to be guessed.
MIN_PASSWORD_LENGTH = 12
AdminPassword = password(MIN_PASSWORD_LENGTH)


def component_inputs(options: Options) -> dict[str, Any]:
    """The options as plain data, by field name, for a component's recorded inputs
    (`ComponentResource.__init__`'s props); secret fields go in as Pulumi secrets."""
    data = options.model_dump(mode="json", exclude=set(type(options)._secret_keys()))
    for name in type(options).model_fields:
        value = getattr(options, name)
        if name in type(options)._secret_keys() and value is not None:
            data[name] = pulumi.Output.secret(value)
    return data
