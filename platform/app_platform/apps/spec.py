"""AppSpec: what an app's owner writes, one field per key of an entry of the `apps` config map.

The same model validates an app written in code (`AppSpec(name=..., port=...)`) and an entry of
the stack config (`AppSpec.from_config(raw, name=..., base_dir=...)`): both get every rule below,
and every problem at once, each naming the field (code) or `apps.<name>.<key>` (config).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import pulumi
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app_platform.database import DatabaseSpec
from app_platform.image import context_problem
from app_platform.instance_types import known_architectures
from app_platform.options import (
    Options,
    OptionsError,
    Problem,
    StrictOptions,
    StringList,
    as_int,
    problems,
    validation_context,
    whole_number,
)

# A DNS label (namespace, Service and host name); at most 30 characters so that
# `<prefix>-<app>` stays within RDS's 63-character identifiers.
APP_NAME_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")
# An app owns the namespace of its name: these belong to Kubernetes or to the platform's add-ons
# (edge, monitoring, GitOps and the hello-world app it delivers), and so do all `kube-*` names.
RESERVED_APP_NAMES = ("default", "envoy-gateway-system", "monitoring", "argocd", "hello-world")
IMAGE_REPOSITORY_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:\d+)?(/[a-z0-9._-]+)+$")
IMAGE_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_DIGEST_PATTERN = re.compile(r"^sha256:[a-f0-9]{64}$")
# Tags that name no particular build: a rollout could not say what it runs.
MOVING_TAGS = ("latest", "main", "master", "stable", "edge", "dev")
CPU_PATTERN = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<milli>m?)$")
MEMORY_PATTERN = re.compile(r"^(?P<number>\d+)(?P<unit>Ki|Mi|Gi)$")
MEMORY_UNITS = {"Ki": 1, "Mi": 1024, "Gi": 1024 * 1024}
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HTTP_PATH_PATTERN = re.compile(r"^/[A-Za-z0-9._~/-]*$")
PROMETHEUS_NAME_PATTERN = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# A stack config key, optionally in another namespace: `commentsApiToken`, `comments:apiToken`.
CONFIG_KEY_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*:)?[A-Za-z][A-Za-z0-9_.-]*$")

# Non-root containers cannot bind ports below 1024 (every capability is dropped).
MIN_APP_PORT, MAX_APP_PORT = 1024, 65535
MAX_REPLICAS = 50
MIN_CPU_TARGET, MAX_CPU_TARGET = 10, 95
# The comments image's own user; a high UID never matches a host user. 0 (root) is refused:
# the pods run under Pod Security `restricted`.
DEFAULT_RUN_AS_USER = 10001
MAX_USER_ID = 2**31 - 1

# Values the platform provides to an app, by the name `platformEnv` uses for them; the secret
# ones go to the app's Secret. PORT and (with a database) DATABASE_URL are always set.
PLATFORM_VALUES = {
    "port": "the container port (`port`)",
    "databaseUrl": "the database's postgresql:// URL, a secret (needs `database`)",
    "hostname": "the app's public host name, <name>.<domain>",
    "url": "the app's public URL, http(s)://<name>.<domain>",
    "namespace": "the app's namespace (its name)",
}
SECRET_PLATFORM_VALUES = ("databaseUrl",)
DEFAULT_PLATFORM_ENV = {"PORT": "port"}
DATABASE_PLATFORM_ENV = {"DATABASE_URL": "databaseUrl"}
PLATFORM_ENV = (*DEFAULT_PLATFORM_ENV, *DATABASE_PLATFORM_ENV)
PlatformValue = Literal["port", "databaseUrl", "hostname", "url", "namespace"]

# Where an app's image comes from: exactly one of these.
IMAGE_SOURCES = {
    "image": "a pinned image reference",
    "build": "a directory of the project holding a Dockerfile, built by the stack",
}
APP_REQUIRED_KEYS = ("port", "cpu", "memory", "healthPaths")


def number(low: float, high: float, unit: str = "") -> BeforeValidator:
    def check(value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not low <= value <= high:
            raise ValueError(f"expected a number from {low:g} to {high:g}{unit}")
        return float(value)

    return BeforeValidator(check)


def matching(pattern: re.Pattern[str], accepted: str, *, empty: bool = False) -> BeforeValidator:
    def check(value: Any) -> str:
        if empty and value == "":
            return value
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"expected {accepted}")
        return value

    return BeforeValidator(check)


def image_problem(image: str) -> str | None:
    """Why `image` is not a pinned image reference, or None if it is."""
    reference, _, digest = image.partition("@")
    last = reference.rsplit("/", 1)[-1]
    repository, tag = reference, ""
    if ":" in last:
        repository, tag = reference.rsplit(":", 1)
    if not IMAGE_REPOSITORY_PATTERN.fullmatch(repository):
        return "an image reference such as ghcr.io/owner/name:1.2.3 (registry/repository:tag)"
    if digest:
        return None if IMAGE_DIGEST_PATTERN.fullmatch(digest) else "a digest sha256:<64 hex>"
    if not tag:
        return "an image pinned by tag or digest (name:1.2.3 or name@sha256:...), not a bare name"
    if tag.lower() in MOVING_TAGS or not IMAGE_TAG_PATTERN.fullmatch(tag):
        return f"an image pinned to a release tag or digest, not the moving tag {tag!r}"
    return None


def cpu_millis(value: str) -> float | None:
    match = CPU_PATTERN.fullmatch(value)
    if not match:
        return None
    amount = float(match["number"])
    return amount if match["milli"] else amount * 1000


def memory_kib(value: str) -> int | None:
    match = MEMORY_PATTERN.fullmatch(value)
    return int(match["number"]) * MEMORY_UNITS[match["unit"]] if match else None


def _quantity(parse: Any, example: str) -> BeforeValidator:
    def check(value: Any) -> str:
        amount = parse(value) if isinstance(value, str) else None
        if amount is None or amount <= 0:
            raise ValueError(f"expected a Kubernetes quantity, e.g. {example}")
        return value

    return BeforeValidator(check)


CPU_EXAMPLE = '{"request": "250m", "limit": "1"}'
MEMORY_EXAMPLE = '{"request": "256Mi", "limit": "512Mi"}'
CpuQuantity = Annotated[str, _quantity(cpu_millis, CPU_EXAMPLE)]
MemoryQuantity = Annotated[str, _quantity(memory_kib, MEMORY_EXAMPLE)]


class Cpu(StrictOptions):
    """CPU request and limit, Kubernetes quantities (`250m`, `1`)."""

    request: CpuQuantity = Field(None, description="CPU the scheduler reserves for each pod.")
    limit: CpuQuantity = Field(None, description="CPU each pod may use at most.")

    @model_validator(mode="after")
    def _request_within_limit(self) -> Self:
        if cpu_millis(self.request) > cpu_millis(self.limit):  # type: ignore[operator]
            raise ValueError("expected a request no larger than the limit")
        return self


class Memory(StrictOptions):
    """Memory request and limit, Kubernetes quantities (`256Mi`, `1Gi`)."""

    request: MemoryQuantity = Field(None, description="Memory the scheduler reserves for each pod.")
    limit: MemoryQuantity = Field(None, description="Memory each pod may use before it is killed.")

    @model_validator(mode="after")
    def _request_within_limit(self) -> Self:
        if memory_kib(self.request) > memory_kib(self.limit):  # type: ignore[operator]
            raise ValueError("expected a request no larger than the limit")
        return self


HttpPath = Annotated[
    str, matching(HTTP_PATH_PATTERN, "an HTTP path starting with /, e.g. /healthz")
]


class HealthPaths(StrictOptions):
    """The HTTP paths of the startup, readiness and liveness probes."""

    startup: HttpPath = Field(description="Answers 200 once the app has started.")
    readiness: HttpPath = Field(description="Answers 200 while the app can take traffic.")
    liveness: HttpPath = Field(description="Answers 200 while the process is healthy.")


METRIC_NAME = "a Prometheus metric name, e.g. http_requests_total"
MetricName = Annotated[str, matching(PROMETHEUS_NAME_PATTERN, METRIC_NAME)]
OptionalMetricName = Annotated[str, matching(PROMETHEUS_NAME_PATTERN, METRIC_NAME, empty=True)]


class Metrics(StrictOptions):
    """The app's own metric names; an empty one skips its alert."""

    requests: OptionalMetricName = Field(
        "", description="Counter of HTTP requests, labelled by status (error-ratio alert)."
    )
    latency: OptionalMetricName = Field(
        "", description="Histogram of request duration in seconds (p99 latency alert)."
    )
    status: MetricName = Field("status", description="The requests counter's status label.")


class AlertThresholds(StrictOptions):
    error_ratio: Annotated[float, number(0.001, 1)] = Field(
        0.05, alias="errorRatio", description="Share of 5xx responses that pages."
    )
    p99_latency_seconds: Annotated[float, number(0.001, 60, " seconds")] = Field(
        1.0, alias="p99LatencySeconds", description="p99 latency that warns, in seconds."
    )


def _database(value: Any) -> Any:
    """`database: true` asks for the defaults, `false` (or nothing) for no database."""
    if value is True:
        return {}
    return None if value is False else value


def _string_map(value: Any) -> Any:
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return value
    raise ValueError('expected a map of names to string values, e.g. {"WORKERS": "2"}')


def _env_names(value: Mapping[str, Any]) -> Mapping[str, Any]:
    bad = [name for name in value if not ENV_NAME_PATTERN.fullmatch(name) or name in PLATFORM_ENV]
    if bad:
        raise ValueError(
            f"expected variable names (letters, digits, _) other than {', '.join(PLATFORM_ENV)}, "
            f"which the platform sets (not: {bad})"
        )
    return value


def _strings(value: Any) -> Any:
    if value is None or (
        isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    ):
        return value
    raise ValueError('expected a list of strings, e.g. ["gunicorn", "app:main"]')


EnvMap = Annotated[Mapping[str, str], BeforeValidator(_string_map)]
Command = Annotated[tuple[str, ...] | None, BeforeValidator(_strings)]

_ENTRY_CHECKED: ContextVar[bool] = ContextVar("app_entry_checked", default=False)


def _context(info: ValidationInfo) -> Mapping[str, Any]:
    return validation_context()


def _namer(info: ValidationInfo) -> Any:
    """How a problem names a field: by config key from config, by field name from code."""
    config = bool(_context(info).get("config"))

    def key(field: str) -> str:
        alias = AppSpec.model_fields[field].alias
        return (alias or field) if config else field

    return key


def _name_problem(name: Any, where: str) -> Problem | None:
    if not isinstance(name, str) or not APP_NAME_PATTERN.fullmatch(name):
        accepted = "an app name of 1-30 lowercase letters, digits or '-', starting with a letter"
        return Problem(where, name, accepted)
    if name in RESERVED_APP_NAMES or name.startswith("kube-"):
        reserved = ", ".join(RESERVED_APP_NAMES)
        return Problem(
            where, name, f"an app name that is not a platform namespace ({reserved}, kube-*)"
        )
    return None


def _entry_problems(data: dict[str, Any], config: bool) -> tuple[dict[str, Any], list[Problem]]:
    """Check the rules about an app entry as a whole; gives the entry to validate field by
    field (without the keys already found wrong) and the problems."""
    found = [p for p in [_name_problem(data.get("name"), "options" if config else "name")] if p]
    if config:
        keys = list(APP_KEYS)
        unknown = sorted(set(data) - {*keys, "name"})
        if unknown:
            shown = {k: v for k, v in data.items() if k != "name"}
            found.append(
                Problem("options", shown, f"only the keys {', '.join(keys)} (unknown: {unknown})")
            )
            data = {k: v for k, v in data.items() if k not in unknown}
        missing = [key for key in APP_REQUIRED_KEYS if key not in data]
        if missing:
            shown = {k: v for k, v in data.items() if k != "name"}
            found.append(
                Problem(
                    "options",
                    shown,
                    f"the keys {', '.join(APP_REQUIRED_KEYS)} (missing: {missing})",
                )
            )
            raise OptionsError(found)
    given = [
        key for key in IMAGE_SOURCES if data.get(key) not in (None, "") or (config and key in data)
    ]
    if len(given) != 1:
        accepted = " or ".join(f"{key} ({meaning})" for key, meaning in IMAGE_SOURCES.items())
        found.append(Problem("options", {k: data[k] for k in given}, f"exactly one of {accepted}"))
        data = {k: v for k, v in data.items() if k not in IMAGE_SOURCES}
    return _replicas(data, found, config), found


def _replicas(data: dict[str, Any], found: list[Problem], config: bool) -> dict[str, Any]:
    """`replicas: n` is `minReplicas = maxReplicas = n`; giving both forms is a mistake."""
    if data.get("replicas") is None:
        return data
    bounds = ("minReplicas", "maxReplicas", "min_replicas", "max_replicas")
    if any(key in data for key in bounds):
        shown = {k: v for k, v in data.items() if k != "name"}
        accepted = "either replicas (a fixed count) or minReplicas/maxReplicas, not both"
        found.append(Problem("options" if config else "replicas", shown, accepted))
        return data
    count = as_int(data["replicas"])
    count = count if count is not None and 1 <= count <= MAX_REPLICAS else 1
    return {**data, "min_replicas": count, "max_replicas": count}


class AppSpec(Options):
    """One HTTP service on the platform. Exactly one of `image` (pinned) or `build`; either
    `replicas` or `minReplicas`/`maxReplicas`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = Field(description="The app's name: its namespace, Service and host name.")
    image: str = Field(
        "",
        description="A pinned image, registry/repo:tag or @sha256:... (:latest and untagged "
        "images are refused); or build instead.",
    )
    build: str | None = Field(
        None,
        description="A directory of the project holding a Dockerfile, instead of image: the "
        "stack builds it for the nodes' architectures (linux/amd64, linux/arm64 for Graviton "
        "nodes; one multi-arch image for both) into an ECR repository of its own (scan on "
        "push, immutable tags, last 10 builds kept, deleted with the stack), tagged <build "
        "hash>-<build id>, and runs it by digest. Building needs Docker where Pulumi runs (a "
        "multi-arch build: a builder that can make one, see Run it on AWS).",
    )
    port: whole_number(MIN_APP_PORT, MAX_APP_PORT) = Field(
        description="The port the container listens on (1024-65535: the app runs unprivileged)."
    )
    replicas: whole_number(1, MAX_REPLICAS, optional=True) = Field(
        None, description="A fixed replica count, instead of minReplicas/maxReplicas."
    )
    min_replicas: whole_number(1, MAX_REPLICAS) = Field(
        alias="minReplicas", description="Fewest replicas the autoscaler keeps."
    )
    max_replicas: whole_number(1, MAX_REPLICAS) = Field(
        alias="maxReplicas", description="Most replicas the autoscaler adds (min == max: fixed)."
    )
    cpu_target_percent: whole_number(MIN_CPU_TARGET, MAX_CPU_TARGET) = Field(
        70, alias="cpuTargetPercent", description="Average CPU use the autoscaler aims at."
    )
    cpu: Cpu = Field(description="CPU request and limit per pod.")
    memory: Memory = Field(description="Memory request and limit per pod.")
    env: Annotated[Mapping[str, str], BeforeValidator(_string_map)] = Field(
        default_factory=dict,
        description="Plain environment variables, name to value (PORT and DATABASE_URL are set "
        "by the platform).",
    )
    secret_env: Mapping[str, Any] = Field(
        default_factory=dict,
        alias="secretEnv",
        description="Secret environment variables: name to the key of a secret stack config "
        "value (read with require_secret), or in code to a pulumi.Output[str]. They go to the "
        "app's Kubernetes Secret, never into the Deployment.",
    )
    platform_env: Mapping[str, PlatformValue] = Field(
        default_factory=dict,
        alias="platformEnv",
        description="More variables the platform fills in: name to one of "
        + ", ".join(PLATFORM_VALUES)
        + ". PORT and, with a database, DATABASE_URL are always set.",
    )
    health_paths: HealthPaths = Field(alias="healthPaths", description="The probes' paths.")
    database: Annotated[DatabaseSpec | None, BeforeValidator(_database)] = Field(
        None, description="A PostgreSQL database of the app's own (true: the defaults)."
    )
    dashboard: str | None = Field(
        None,
        description="A Grafana dashboard: in config the path of its JSON file in the project, "
        "in code the JSON text.",
    )
    metrics: Metrics = Field(default_factory=Metrics, description="The app's metric names.")
    alerts: AlertThresholds = Field(
        default_factory=AlertThresholds, description="When the app's alerts fire."
    )
    runbook_url: str = Field(
        "", alias="runbookUrl", description="An https:// runbook linked from every alert."
    )
    run_as_user: whole_number(1, MAX_USER_ID) = Field(
        DEFAULT_RUN_AS_USER,
        alias="runAsUser",
        description="The container's user and group id (the comments image's user by default; "
        "never 0: pods run under Pod Security restricted).",
    )
    architectures: Annotated[StringList, AfterValidator(known_architectures)] = Field(
        (),
        description="CPU architectures the pinned image has (amd64, arm64): its pods go only "
        "to nodes of those. Empty: any node (the image must then be multi-arch). An app the "
        "stack builds runs on the architectures it is built for.",
    )
    command: Annotated[tuple[str, ...] | None, BeforeValidator(_strings)] = Field(
        None, description="The container's entrypoint, instead of the image's."
    )
    args: Annotated[tuple[str, ...] | None, BeforeValidator(_strings)] = Field(
        None, description="The entrypoint's arguments, instead of the image's."
    )

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas > self.min_replicas

    @field_validator("env")
    @classmethod
    def _env(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        return dict(_env_names(value))

    @field_validator("secret_env", mode="before")
    @classmethod
    def _secret_env(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or not all(
            isinstance(v, pulumi.Output) or (isinstance(v, str) and CONFIG_KEY_PATTERN.fullmatch(v))
            for v in value.values()
        ):
            raise ValueError(
                "expected a map of variable names to keys of secret stack config values, "
                'e.g. {"API_TOKEN": "commentsApiToken"} (set with pulumi config set --secret)'
            )
        return dict(_env_names(value))

    @field_validator("platform_env", mode="before")
    @classmethod
    def _platform_env(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or not all(v in PLATFORM_VALUES for v in value.values()):
            raise ValueError(
                "expected a map of variable names to platform values: " + ", ".join(PLATFORM_VALUES)
            )
        return dict(_env_names(value))

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        why = image_problem(value) if value else None
        if why:
            raise ValueError(f"expected {why}")
        return value

    @field_validator("build")
    @classmethod
    def _buildable(cls, value: str | None, info: ValidationInfo) -> str | None:
        why = context_problem(value, _context(info).get("base_dir")) if value else None
        if why:
            raise ValueError(f"expected {why}")
        return value

    @field_validator("dashboard", mode="before")
    @classmethod
    def _dashboard(cls, value: Any, info: ValidationInfo) -> Any:
        base_dir = _context(info).get("base_dir")
        accepted = "the path of a Grafana dashboard JSON file"
        if value is None:
            return None
        try:
            text = (Path(base_dir) / value).read_text() if base_dir else value
            json.loads(text)
        except (OSError, TypeError, ValueError):
            raise ValueError(
                f"expected {accepted if base_dir else 'Grafana dashboard JSON'}"
            ) from None
        return text

    @field_validator("runbook_url")
    @classmethod
    def _runbook(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("expected an https:// URL")
        return value

    @model_validator(mode="after")
    def _across_fields(self, info: ValidationInfo) -> Self:
        key = _namer(info)
        found = []
        if self.min_replicas > self.max_replicas:
            found.append(
                Problem(
                    key("max_replicas"),
                    self.max_replicas,
                    f"at least {key('min_replicas')} ({self.min_replicas})",
                )
            )
        names = [*self.env, *self.secret_env, *self.platform_env]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            accepted = f"each variable in one of {key('env')}, {key('secret_env')} and "
            found.append(
                Problem(
                    key("env"),
                    dict(self.env),
                    accepted + f"{key('platform_env')} only (in more than one: {twice})",
                )
            )
        if "databaseUrl" in self.platform_env.values() and self.database is None:
            found.append(
                Problem(
                    key("platform_env"), dict(self.platform_env), "databaseUrl only with a database"
                )
            )
        if found:
            raise OptionsError(found)
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _whole(cls, data: Any, handler: Any, info: ValidationInfo) -> Self:
        """The rules about the entry as a whole (name, keys, image source, replicas), reported
        together with every field's own problems."""
        if not isinstance(data, Mapping) or _ENTRY_CHECKED.get():
            return handler(data)
        data, found = _entry_problems(dict(data), bool(_context(info).get("config")))
        # pydantic runs this validator again for the model's own __init__: check once.
        token = _ENTRY_CHECKED.set(True)
        try:
            model = handler(data)
        except ValidationError as error:
            raise OptionsError([*found, *problems(error)]) from None
        finally:
            _ENTRY_CHECKED.reset(token)
        if found:
            raise OptionsError(found)
        return model

    @classmethod
    def from_config(  # type: ignore[override]
        cls, raw: Any, *, prefix: str = "", name: str = "", base_dir: Path | None = None
    ) -> Self:
        """Entry `name` of the `apps` map; relative paths (build, dashboard) start at
        `base_dir` (the project)."""
        data = {**raw, "name": name} if isinstance(raw, Mapping) else raw
        context = {"base_dir": base_dir or Path.cwd()}
        return super().from_config(data, prefix=prefix, context=context)


# Every key of an app entry (the name is the entry's key in the `apps` map). A test keeps
# Pulumi.yaml's description and the README's table in step with these.
APP_KEYS = tuple(
    info.alias or field for field, info in AppSpec.model_fields.items() if field != "name"
)


# The `apps` key's description in Pulumi.yaml (config.StackKeys): each key of an entry, briefly.
APPS_DESCRIPTION = (
    "Apps this stack runs, by name (a DNS label): {image (pinned tag or digest) or build (a "
    "directory of the project holding a Dockerfile: the stack builds it into its own ECR "
    "repository and runs it by digest), port, replicas or minReplicas/maxReplicas, "
    "cpuTargetPercent, cpu {request, limit}, memory {request, limit}, env (map), secretEnv "
    "(map of names to keys of secret stack config values), platformEnv (map of names to "
    "platform values: port, databaseUrl, hostname, url, namespace), healthPaths {startup, "
    "readiness, liveness}, database (true, false or {instanceClass, storageGib, "
    "maxStorageGib, backupRetentionDays, deletionProtection, finalSnapshot, multiAz}), "
    "dashboard (JSON file), metrics {requests, latency}, alerts {errorRatio, "
    "p99LatencySeconds}, runbookUrl, runAsUser (container user and group id, default 10001), "
    "command and args (lists of strings replacing the image's entrypoint and its arguments), "
    "architectures (of a pinned image: amd64, arm64; its pods go only to such nodes)}. "
    "Each is served at <name>.<domain>."
)
