"""Stack configuration: read once, each component's part validated by that component's own
options model, and handed over.

Components never read stack config. `load()` reads every key this program knows and gives each
component its part (`NetworkOptions`, `ClusterOptions`, ...); any mistake, in any component,
stops the program before a single resource is registered, with one message per bad key naming
the key, the value and what is accepted.

Defaults live in the code (the models' fields), so a project whose `Pulumi.yaml` declares no
config still gets a working platform; `Pulumi.yaml` repeats them for the CLI and for readers.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pulumi

from app_platform import preflight
from app_platform.alerting import AlertReceivers
from app_platform.app import AlertThresholds, AppSpec, HealthPaths, Observability, Resources
from app_platform.cluster import ClusterOptions
from app_platform.database import DatabaseSpec
from app_platform.edge import EdgeOptions, certificate_region_problem
from app_platform.gitops import GitOpsOptions
from app_platform.image import context_problem
from app_platform.network import NetworkOptions
from app_platform.observability import ObservabilityOptions
from app_platform.options import Options, OptionsError, Problem

OptionsT = TypeVar("OptionsT", bound=Options)

# The project's short name when config sets none: resource names start with `platform-<stack>`.
DEFAULT_NAME = "platform"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$")
# `<name>-<stack>` starts every resource name, and AWS caps some of them: a node group name
# prefix takes 37 characters (`<prefix>-system-`), an IAM role 64 (`<prefix>-load-balancer-
# controller` plus Pulumi's 8-character suffix). Lowercase only: RDS and S3 fold case.
MAX_PREFIX_LENGTH = 29
STACK_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ConfigError(pulumi.RunError):
    """Raised with every configuration mistake found, one per line; Pulumi prints it cleanly."""


@dataclass(frozen=True)
class PlatformSettings:
    name: str
    stack: str
    region: str
    # The region's zones the network spreads over (as many as it asks for), in order.
    availability_zones: tuple[str, ...]
    network: NetworkOptions
    cluster: ClusterOptions
    edge: EdgeOptions
    gitops: GitOpsOptions
    observability: ObservabilityOptions
    # Where alerts go (the alert* keys); nothing set: nowhere.
    alert_receivers: AlertReceivers
    # The apps this stack runs on the platform (the `apps` map), sorted by name.
    apps: tuple[AppSpec, ...] = ()
    # Set only for an app stack (see AppStackSettings); a platform stack has none.
    platform_stack: str | None = None

    @property
    def prefix(self) -> str:
        """The one prefix every resource name derives from, e.g. `platform-dev`."""
        return f"{self.name}-{self.stack}"


@dataclass(frozen=True)
class AppStackSettings:
    """An app stack: only apps, on the platform of another stack (`platformStack`)."""

    name: str
    stack: str
    region: str
    platform_stack: str
    apps: tuple[AppSpec, ...]

    @property
    def prefix(self) -> str:
        return f"{self.name}-{self.stack}"


# Every key of the project namespace this program reads, with its Pulumi.yaml type. A test keeps
# this table and Pulumi.yaml in step.
KEYS: dict[str, str] = {
    "name": "string",
    "vpcCidr": "string",
    "availabilityZoneCount": "integer",
    "natGateways": "string",
    "vpcFlowLogs": "boolean",
    "kubernetesVersion": "string",
    "publicAccessCidrs": "array",
    "adminRoleArns": "array",
    "spotInstanceTypes": "array",
    "spotMinSize": "integer",
    "spotDesiredSize": "integer",
    "spotMaxSize": "integer",
    "systemInstanceType": "string",
    "systemNodeCount": "integer",
    "nodeDiskSizeGib": "integer",
    "domain": "string",
    "certificateArn": "string",
    "gitopsRepoUrl": "string",
    "gitopsPath": "string",
    "gitopsRevision": "string",
    "argocdAdminPassword": "string",
    "grafanaAdminPassword": "string",
    "prometheusRetention": "string",
    "prometheusVolumeSizeGib": "integer",
    "alertSlackWebhookUrl": "string",
    "alertSnsTopicArn": "string",
    "alertEmailTo": "array",
    "alertSmtpSmarthost": "string",
    "alertSmtpFrom": "string",
    "alertSmtpUsername": "string",
    "alertSmtpPassword": "string",
    "alertHeartbeatUrl": "string",
    "apps": "object",
    "platformStack": "string",
}
# Keys whose values are secrets: read as secrets and never echoed in an error message.
SECRET_KEYS = (
    "argocdAdminPassword",
    "grafanaAdminPassword",
    "alertSlackWebhookUrl",
    "alertSmtpPassword",
    "alertHeartbeatUrl",
)
# The config key of each AlertReceivers field.
ALERT_KEYS = {
    "slack_webhook_url": "alertSlackWebhookUrl",
    "sns_topic_arn": "alertSnsTopicArn",
    "email_to": "alertEmailTo",
    "smtp_smarthost": "alertSmtpSmarthost",
    "smtp_from": "alertSmtpFrom",
    "smtp_username": "alertSmtpUsername",
    "smtp_password": "alertSmtpPassword",
    "heartbeat_url": "alertHeartbeatUrl",
}


class _Checker:
    """Collects every problem instead of stopping at the first, so one run shows them all."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw
        self.errors: list[str] = []

    def fail(self, key: str, value: Any, accepted: str) -> None:
        self.errors.append(
            f"config '{key}' = {json.dumps(value)} is not valid: expected {accepted}"
        )

    def present(self, key: str) -> Any:
        value = self.raw.get(key)
        if value is None:
            self.errors.append(
                f"config '{key}' is not set: set it in the stack file or Pulumi.yaml"
            )
        return value

    def string(self, key: str, check: Callable[[str], bool], accepted: str) -> str:
        value = self.present(key)
        if value is not None and (not isinstance(value, str) or not check(value)):
            self.fail(key, value, accepted)
        return value if isinstance(value, str) else ""

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.present(key)
        parsed = _as_int(value)
        if value is not None and (parsed is None or not low <= parsed <= high):
            self.fail(key, value, f"a whole number from {low} to {high}")
        return parsed if parsed is not None else low

    def boolean(self, key: str) -> bool:
        value = self.present(key)
        parsed = _as_bool(value)
        if value is not None and parsed is None:
            self.fail(key, value, "true or false")
        return bool(parsed)

    def string_list(self, key: str) -> list[str]:
        value = self.present(key)
        parsed = _as_list(value)
        if value is not None and (parsed is None or not all(isinstance(v, str) for v in parsed)):
            self.fail(key, value, "a list of strings")
            return []
        return parsed or []


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


# The components whose options come from stack config, each from its own keys.
COMPONENT_OPTIONS: tuple[type[Options], ...] = (
    NetworkOptions,
    ClusterOptions,
    EdgeOptions,
    GitOpsOptions,
    ObservabilityOptions,
)
# Config keys that fill a nested part of a component's options: key -> (field alias, alias).
NESTED_KEYS: dict[str, tuple[str, str]] = {
    "spotInstanceTypes": ("spot", "instanceTypes"),
    "spotMinSize": ("spot", "minSize"),
    "spotDesiredSize": ("spot", "desiredSize"),
    "spotMaxSize": ("spot", "maxSize"),
}


def _component(check: _Checker, model: type[OptionsT]) -> OptionsT | None:
    """One component's part of the config, validated by the component's own options model;
    its problems join every other key's, named by config key."""
    raw = _component_values(check.raw, model)
    try:
        return model.from_config(raw)
    except OptionsError as error:
        check.errors += [_config_problem(problem, model, raw) for problem in error.problems]
        return None


def _decoded(key: str, value: Any) -> Any:
    """Pulumi stores arrays and objects as JSON text; the models take them as data."""
    if KEYS.get(key) in ("array", "object") and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _component_values(raw: Mapping[str, Any], model: type[Options]) -> dict[str, Any]:
    """The model's keys that are set, by alias; nested parts start from the field's default,
    so setting one key of a group (spotMaxSize) keeps the others."""
    values = {
        key: _decoded(key, raw[key]) for key in model.config_keys() if raw.get(key) is not None
    }
    for key, (group, alias) in NESTED_KEYS.items():
        if group in model.config_keys() and raw.get(key) is not None:
            default = model.model_fields[group].default
            part = values.setdefault(group, default.model_dump(by_alias=True))
            part[alias] = _decoded(key, raw[key])
    return values


def _config_problem(problem: Problem, model: type[Options], raw: Mapping[str, Any]) -> str:
    """The sentence for one problem, named by config key. A rule across a nested group's
    fields (spot sizes in order) names each of the group's keys, with its value."""
    where = problem.where
    keys = {f"{group}.{alias}": key for key, (group, alias) in NESTED_KEYS.items()}
    if where in keys:
        return f"config {replace(problem, where=keys[where])}"
    group = {key: alias for key, (part, alias) in NESTED_KEYS.items() if part == where}
    if not group:
        return f"config {problem}"
    nested = model.model_fields[where].annotation
    accepted = problem.accepted
    shown = []
    for key, alias in group.items():
        name = next(n for n, info in nested.model_fields.items() if info.alias == alias)
        if name in accepted:
            accepted = accepted.replace(name, key)
            value = raw[where][alias]
            if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
                value = int(value)  # as the model reads it: "5" is the number 5
            shown.append(f"'{key}' = {json.dumps(value)}")
    return f"config {', '.join(shown)} are not valid: expected {accepted}"


def _check_name(check: _Checker, stack: str) -> str:
    """The `name` key, and whether `<name>-<stack>` can prefix every resource name."""
    if check.raw.get("name") is None:
        return _stack_name_problems(check, DEFAULT_NAME, stack)
    name = check.string(
        "name",
        NAME_PATTERN.fullmatch,
        "3-24 lowercase letters, digits or '-', starting with a letter",
    )
    return _stack_name_problems(check, name, stack)


def _stack_name_problems(check: _Checker, name: str, stack: str) -> str:
    """Whether `<name>-<stack>` can prefix every resource name; gives the name back."""
    if not STACK_PATTERN.fullmatch(stack):
        check.errors.append(
            f"stack name {stack!r} is not valid: resource names start with <name>-<stack>, so "
            "use lowercase letters, digits and '-' (pulumi stack rename)"
        )
    elif name and len(f"{name}-{stack}") > MAX_PREFIX_LENGTH:
        check.errors.append(
            f"config 'name' = {json.dumps(name)} with stack {stack!r} is not valid: "
            f"'{name}-{stack}' must be at most {MAX_PREFIX_LENGTH} characters, the longest "
            "prefix AWS accepts in every resource name; shorten the name or the stack"
        )
    return name


def parse(
    raw: Mapping[str, Any],
    *,
    stack: str,
    region: str,
    zones: Sequence[str],
    base_dir: Path | None = None,
    environment: preflight.Environment | None = None,
) -> PlatformSettings:
    """Validate raw config values (strings as Pulumi stores them, or plain values).

    `zones` are the region's available zones and `environment` what the machine and AWS say
    (Docker, the git origin, the caller: `preflight`); nothing here calls AWS or runs
    anything, so tests can drive it. `base_dir` is where relative paths in the config (app
    dashboards and build contexts) start: the project.
    """
    environment = environment or preflight.Environment()
    check = _Checker(raw)
    name = _check_name(check, stack)
    network = _component(check, NetworkOptions)
    zone_count = network.availability_zone_count if network else 0
    if len(zones) < zone_count:
        check.fail(
            "availabilityZoneCount",
            zone_count,
            f"at most {len(zones)}, the zones region {region} has ({', '.join(zones)})",
        )

    cluster = _component(check, ClusterOptions)
    _check_creator(check, cluster.admin_role_arns if cluster else (), environment.caller_arn)

    edge, gitops, observability = _check_addons(check, region, environment.git_origin)
    alert_receivers = _check_alert_receivers(check)
    apps = _check_apps(check, base_dir or Path.cwd(), environment)

    if check.errors:
        raise ConfigError("invalid stack configuration:\n  - " + "\n  - ".join(check.errors))
    return PlatformSettings(
        name=name,
        stack=stack,
        region=region,
        availability_zones=tuple(zones[:zone_count]),
        network=network,
        cluster=cluster,
        edge=edge,
        gitops=gitops,
        observability=observability,
        alert_receivers=alert_receivers,
        apps=apps,
    )


def _check_creator(check: _Checker, admins: Sequence[str], caller: str | None) -> None:
    """The identity running the program creates the cluster, and EKS gives the creator an
    access entry itself: a second one, from adminRoleArns, fails the deployment."""
    listed = [arn for arn in admins if caller and preflight.same_role(arn, caller)]
    for arn in listed:
        check.errors.append(
            f"config 'adminRoleArns' lists {json.dumps(arn)}, the role this program runs as "
            f"({caller}): EKS already gives the cluster's creator admin access, and a second "
            "access entry for it fails the deployment; remove it from adminRoleArns (or run "
            "as another identity)"
        )


def _check_gitops(check: _Checker, origin: preflight.GitOrigin) -> GitOpsOptions | None:
    """GitOps' keys; an empty `gitopsRepoUrl` means the checkout's own origin."""
    gitops = _component(check, GitOpsOptions)
    if gitops is None or gitops.repo_url:
        return gitops
    if origin.url is None:
        check.errors.append(
            f"config 'gitopsRepoUrl' is empty, which means this checkout's git origin, and "
            f"{origin.problem}: set gitopsRepoUrl to the URL of a repository Argo CD can read "
            "(pulumi config set gitopsRepoUrl https://github.com/<owner>/<repo>.git)"
        )
        return None
    return gitops.model_copy(update={"repo_url": origin.url})


def _check_addons(
    check: _Checker, region: str, origin: preflight.GitOrigin
) -> tuple[EdgeOptions | None, GitOpsOptions | None, ObservabilityOptions | None]:
    edge = _component(check, EdgeOptions)
    accepted = edge and certificate_region_problem(edge.certificate_arn, region)
    if accepted:
        check.fail("certificateArn", edge.certificate_arn, accepted)
    gitops = _check_gitops(check, origin)
    return edge, gitops, _component(check, ObservabilityOptions)


def _check_alert_receivers(check: _Checker) -> AlertReceivers:
    """The alert* keys; AlertReceivers says what is wrong with them, named by config key."""

    def optional(key: str) -> str | None:
        value = check.raw.get(key)
        if value not in (None, "") and not isinstance(value, str):
            check.fail(key, "[secret]" if key in SECRET_KEYS else value, "a string")
            return None
        return value or None

    email_to = check.string_list("alertEmailTo") if check.raw.get("alertEmailTo") else []
    receivers = AlertReceivers(
        **{name: optional(key) for name, key in ALERT_KEYS.items() if name != "email_to"},
        email_to=tuple(email_to),
    )
    check.errors.extend(receivers.problems(lambda name: f"config '{ALERT_KEYS[name]}'"))
    return receivers


# `<org>/<project>/<stack>`, as `pulumi stack ls --all` prints a fully qualified stack name.
STACK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def parse_app_stack(
    raw: Mapping[str, Any],
    *,
    stack: str,
    region: str,
    base_dir: Path | None = None,
    environment: preflight.Environment | None = None,
) -> AppStackSettings:
    """Validate an app stack's config: its name, the platform stack it runs on, its apps."""
    check = _Checker(raw)
    name = _check_name(check, stack)
    platform_stack = check.string(
        "platformStack",
        STACK_NAME_PATTERN.fullmatch,
        "a fully qualified platform stack name, <org>/app-platform/<stack> "
        "(organization/app-platform/dev on a local backend)",
    )
    apps = _check_apps(check, base_dir or Path.cwd(), environment or preflight.Environment())
    if not apps and not check.errors:
        check.fail("apps", {}, "at least one app: an app stack deploys only its apps")
    if check.errors:
        raise ConfigError("invalid stack configuration:\n  - " + "\n  - ".join(check.errors))
    return AppStackSettings(name, stack, region, platform_stack, apps)


# ---------------------------------------------------------------------------------------------
# Apps: the `apps` map (name -> settings); adding an app is a config entry.
# ---------------------------------------------------------------------------------------------

# A DNS label (namespace, Service and host name); at most 30 characters so that
# `<prefix>-<app>` stays within RDS's 63-character identifiers.
APP_NAME_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")
# An app owns the namespace of its name: these belong to Kubernetes or to the platform's add-ons
# (edge, monitoring, GitOps and the hello-world app it delivers), and so do all `kube-*` names.
RESERVED_APP_NAMES = (
    "default",
    "envoy-gateway-system",
    "monitoring",
    "argocd",
    "hello-world",
)
IMAGE_REPOSITORY_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:\d+)?(/[a-z0-9._-]+)+$")
IMAGE_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_DIGEST_PATTERN = re.compile(r"^sha256:[a-f0-9]{64}$")
# Tags that name no particular build: a rollout could not say what it runs.
MOVING_TAGS = ("latest", "main", "master", "stable", "edge", "dev")
CPU_PATTERN = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<milli>m?)$")
MEMORY_PATTERN = re.compile(r"^(?P<number>\d+)(?P<unit>Ki|Mi|Gi)$")
MEMORY_UNITS = {"Ki": 1, "Mi": 1024, "Gi": 1024 * 1024}
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by the platform: PORT from `port`, DATABASE_URL from the app's database.
PLATFORM_ENV = ("PORT", "DATABASE_URL")
HEALTH_PROBES = ("startup", "readiness", "liveness")
HTTP_PATH_PATTERN = re.compile(r"^/[A-Za-z0-9._~/-]*$")
PROMETHEUS_NAME_PATTERN = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
DB_INSTANCE_CLASS_PATTERN = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
# Non-root containers cannot bind ports below 1024 (every capability is dropped).
MIN_APP_PORT, MAX_APP_PORT = 1024, 65535
MAX_REPLICAS = 50
# RDS limits: gp3 storage 20-65536 GiB, automated backups kept 1-35 days (0 would turn them off).
MIN_DB_STORAGE_GIB, MAX_DB_STORAGE_GIB = 20, 65536
MIN_BACKUP_DAYS, MAX_BACKUP_DAYS = 1, 35
APP_KEYS = (
    "image",
    "build",
    "port",
    "replicas",
    "minReplicas",
    "maxReplicas",
    "cpuTargetPercent",
    "cpu",
    "memory",
    "env",
    "healthPaths",
    "database",
    "dashboard",
    "metrics",
    "alerts",
    "runbookUrl",
)
APP_REQUIRED_KEYS = ("port", "cpu", "memory", "healthPaths")
# Where an app's image comes from: exactly one of these.
IMAGE_SOURCES = {
    "image": "a pinned image reference",
    "build": "a directory of the project holding a Dockerfile, built by the stack",
}
DATABASE_KEYS = (
    "instanceClass",
    "storageGib",
    "maxStorageGib",
    "backupRetentionDays",
    "deletionProtection",
    "finalSnapshot",
    "multiAz",
)
# An app's optional settings default to the component's own defaults (AppSpec, DatabaseSpec,
# AlertThresholds), so a stack file and a program using the library get the same app.
_DB = DatabaseSpec()
DATABASE_DEFAULTS = {
    "instanceClass": _DB.instance_class,
    "storageGib": _DB.storage_gib,
    "maxStorageGib": _DB.max_storage_gib,
    "backupRetentionDays": _DB.backup_retention_days,
    "deletionProtection": _DB.deletion_protection,
    "finalSnapshot": _DB.final_snapshot,
    "multiAz": _DB.multi_az,
}
ALERT_DEFAULTS = {
    "errorRatio": AlertThresholds().error_ratio,
    "p99LatencySeconds": AlertThresholds().p99_latency_seconds,
}
APP_DEFAULTS = {"cpuTargetPercent": AppSpec.__dataclass_fields__["cpu_target_percent"].default}


def _cpu_millis(value: str) -> float | None:
    match = CPU_PATTERN.fullmatch(value)
    if not match:
        return None
    number = float(match["number"])
    return number if match["milli"] else number * 1000


def _memory_kib(value: str) -> int | None:
    match = MEMORY_PATTERN.fullmatch(value)
    return int(match["number"]) * MEMORY_UNITS[match["unit"]] if match else None


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


class _Nested:
    """Checks values inside an object-valued key, naming each by its path (apps.x.port)."""

    def __init__(self, check: _Checker):
        self.check = check

    def object(self, path: str, value: Any, keys: Sequence[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.check.fail(path, value, "an object")
            return None
        unknown = sorted(set(value) - set(keys))
        if unknown:
            self.check.fail(path, value, f"only the keys {', '.join(keys)} (unknown: {unknown})")
        return value

    def integer(self, path: str, value: Any, low: int, high: int) -> int:
        parsed = _as_int(value)
        if parsed is None or not low <= parsed <= high:
            self.check.fail(path, value, f"a whole number from {low} to {high}")
            return low
        return parsed

    def number(self, path: str, value: Any, low: float, high: float, unit: str = "") -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high
        if not ok:
            self.check.fail(path, value, f"a number from {low:g} to {high:g}{unit}")
            return low
        return float(value)

    def boolean(self, path: str, value: Any) -> bool:
        parsed = _as_bool(value)
        if parsed is None:
            self.check.fail(path, value, "true or false")
        return bool(parsed)

    def string(self, path: str, value: Any, pattern: re.Pattern[str], accepted: str) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.check.fail(path, value, accepted)
            return ""
        return value


def _check_resources(nested: _Nested, path: str, app: dict[str, Any]) -> Resources:
    quantities: dict[str, str] = {}
    for resource, parse_quantity, example in (
        ("cpu", _cpu_millis, '{"request": "250m", "limit": "1"}'),
        ("memory", _memory_kib, '{"request": "256Mi", "limit": "512Mi"}'),
    ):
        key = f"{path}.{resource}"
        value = nested.object(key, app.get(resource), ("request", "limit"))
        if value is None:
            continue
        parsed = {}
        for bound in ("request", "limit"):
            raw = value.get(bound)
            amount = parse_quantity(raw) if isinstance(raw, str) else None
            if amount is None or amount <= 0:
                nested.check.fail(f"{key}.{bound}", raw, f"a Kubernetes quantity, e.g. {example}")
            else:
                parsed[bound] = amount
                quantities[f"{resource}_{bound}"] = raw
        if len(parsed) == 2 and parsed["request"] > parsed["limit"]:
            nested.check.fail(key, value, "a request no larger than the limit")
    return Resources(
        cpu_request=quantities.get("cpu_request", ""),
        cpu_limit=quantities.get("cpu_limit", ""),
        memory_request=quantities.get("memory_request", ""),
        memory_limit=quantities.get("memory_limit", ""),
    )


def _check_database(nested: _Nested, path: str, value: Any) -> DatabaseSpec | None:
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    options = nested.object(path, value, DATABASE_KEYS)
    if options is None:
        return None
    merged = {**DATABASE_DEFAULTS, **options}
    storage = nested.integer(
        f"{path}.storageGib", merged["storageGib"], MIN_DB_STORAGE_GIB, MAX_DB_STORAGE_GIB
    )
    max_storage = nested.integer(
        f"{path}.maxStorageGib", merged["maxStorageGib"], MIN_DB_STORAGE_GIB, MAX_DB_STORAGE_GIB
    )
    if max_storage < storage:
        nested.check.fail(f"{path}.maxStorageGib", max_storage, f"at least storageGib ({storage})")
    return DatabaseSpec(
        instance_class=nested.string(
            f"{path}.instanceClass",
            merged["instanceClass"],
            DB_INSTANCE_CLASS_PATTERN,
            "an RDS instance class such as db.t4g.micro",
        ),
        storage_gib=storage,
        max_storage_gib=max_storage,
        backup_retention_days=nested.integer(
            f"{path}.backupRetentionDays",
            merged["backupRetentionDays"],
            MIN_BACKUP_DAYS,
            MAX_BACKUP_DAYS,
        ),
        deletion_protection=nested.boolean(
            f"{path}.deletionProtection", merged["deletionProtection"]
        ),
        final_snapshot=nested.boolean(f"{path}.finalSnapshot", merged["finalSnapshot"]),
        multi_az=nested.boolean(f"{path}.multiAz", merged["multiAz"]),
    )


def _check_app(nested: _Nested, name: str, raw: Any, base_dir: Path) -> AppSpec | None:
    path = f"apps.{name}"
    if not APP_NAME_PATTERN.fullmatch(name):
        nested.check.fail(
            path,
            name,
            "an app name of 1-30 lowercase letters, digits or '-', starting with a letter",
        )
    elif name in RESERVED_APP_NAMES or name.startswith("kube-"):
        nested.check.fail(
            path,
            name,
            f"an app name that is not a platform namespace ({', '.join(RESERVED_APP_NAMES)}, "
            "kube-*)",
        )
    app = nested.object(path, raw, APP_KEYS)
    if app is None:
        return None
    missing = [key for key in APP_REQUIRED_KEYS if key not in app]
    if missing:
        nested.check.fail(
            path, app, f"the keys {', '.join(APP_REQUIRED_KEYS)} (missing: {missing})"
        )
        return None
    app = {**APP_DEFAULTS, **app}

    image, build = _check_image_source(nested, path, app, base_dir)
    port = nested.integer(f"{path}.port", app["port"], MIN_APP_PORT, MAX_APP_PORT)

    if "replicas" in app and ("minReplicas" in app or "maxReplicas" in app):
        nested.check.fail(
            path, app, "either replicas (a fixed count) or minReplicas/maxReplicas, not both"
        )
    if "replicas" in app:
        low = high = nested.integer(f"{path}.replicas", app["replicas"], 1, MAX_REPLICAS)
    else:
        low = nested.integer(f"{path}.minReplicas", app.get("minReplicas"), 1, MAX_REPLICAS)
        high = nested.integer(f"{path}.maxReplicas", app.get("maxReplicas"), 1, MAX_REPLICAS)
        if low > high:
            nested.check.fail(f"{path}.maxReplicas", high, f"at least minReplicas ({low})")
    cpu_target = nested.integer(f"{path}.cpuTargetPercent", app["cpuTargetPercent"], 10, 95)
    resources = _check_resources(nested, path, app)

    health = nested.object(f"{path}.healthPaths", app["healthPaths"], HEALTH_PROBES) or {}
    paths = {
        probe: nested.string(
            f"{path}.healthPaths.{probe}",
            health.get(probe),
            HTTP_PATH_PATTERN,
            "an HTTP path starting with /, e.g. /healthz",
        )
        for probe in HEALTH_PROBES
    }

    database = _check_database(nested, f"{path}.database", app.get("database"))
    env = app.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        nested.check.fail(
            f"{path}.env", env, 'a map of names to string values, e.g. {"WORKERS": "2"}'
        )
        env = {}
    bad_names = [k for k in env if not ENV_NAME_PATTERN.fullmatch(k) or k in PLATFORM_ENV]
    if bad_names:
        nested.check.fail(
            f"{path}.env",
            env,
            f"variable names (letters, digits, _) other than {', '.join(PLATFORM_ENV)}, which "
            f"the platform sets (not: {bad_names})",
        )

    dashboard = None
    if "dashboard" in app:
        dashboard_path = app["dashboard"]
        file = base_dir / dashboard_path if isinstance(dashboard_path, str) else None
        try:
            dashboard = file.read_text() if file else None
            json.loads(dashboard or "")
        except (OSError, ValueError):
            nested.check.fail(
                f"{path}.dashboard", dashboard_path, "the path of a Grafana dashboard JSON file"
            )
            dashboard = None
    metrics = (
        nested.object(f"{path}.metrics", app.get("metrics", {}), ("requests", "latency")) or {}
    )
    metric_names = {
        key: nested.string(
            f"{path}.metrics.{key}",
            metrics[key],
            PROMETHEUS_NAME_PATTERN,
            "a Prometheus metric name, e.g. http_requests_total",
        )
        for key in ("requests", "latency")
        if key in metrics
    }
    alerts = {
        **ALERT_DEFAULTS,
        **(nested.object(f"{path}.alerts", app.get("alerts", {}), tuple(ALERT_DEFAULTS)) or {}),
    }
    thresholds = AlertThresholds(
        error_ratio=nested.number(f"{path}.alerts.errorRatio", alerts["errorRatio"], 0.001, 1),
        p99_latency_seconds=nested.number(
            f"{path}.alerts.p99LatencySeconds", alerts["p99LatencySeconds"], 0.001, 60, " seconds"
        ),
    )
    runbook = app.get("runbookUrl", "")
    if not isinstance(runbook, str) or (runbook and not runbook.startswith("https://")):
        nested.check.fail(f"{path}.runbookUrl", runbook, "an https:// URL")
        runbook = ""

    return AppSpec(
        name=name,
        image=image,
        build=build,
        port=port,
        min_replicas=low,
        max_replicas=high,
        cpu_target_percent=cpu_target,
        resources=resources,
        health=HealthPaths(**paths),
        env=dict(env),
        database=database,
        observability=Observability(
            dashboard_json=dashboard,
            requests_metric=metric_names.get("requests", ""),
            latency_histogram=metric_names.get("latency", ""),
            alerts=thresholds,
            runbook_url=runbook,
        ),
    )


def _check_image_source(
    nested: _Nested, path: str, app: dict[str, Any], base_dir: Path
) -> tuple[str, str | None]:
    """The app's pinned `image`, or the directory to `build` it from: exactly one."""
    given = [key for key in IMAGE_SOURCES if key in app]
    if len(given) != 1:
        nested.check.fail(
            path,
            {key: app[key] for key in given},
            "exactly one of "
            + " or ".join(f"{key} ({meaning})" for key, meaning in IMAGE_SOURCES.items()),
        )
        return "", None
    if "build" in app:
        build = app["build"]
        why = context_problem(build, base_dir) if isinstance(build, str) else None
        if not isinstance(build, str) or why:
            nested.check.fail(f"{path}.build", build, why or IMAGE_SOURCES["build"])
            return "", None
        return "", build
    image = app["image"]
    why = image_problem(image) if isinstance(image, str) else "an image reference (a string)"
    if why:
        nested.check.fail(f"{path}.image", image, why)
    return (image if isinstance(image, str) else ""), None


def _raw_apps(raw: Mapping[str, Any]) -> Any:
    """The `apps` value as data (the CLI hands it over as JSON), or None when unset."""
    value = raw.get("apps")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def builds_images(raw: Mapping[str, Any]) -> bool:
    """Whether any app of this config says `build` (so Docker is needed)."""
    apps = _raw_apps(raw)
    return isinstance(apps, dict) and any(
        isinstance(app, dict) and "build" in app for app in apps.values()
    )


def _check_docker(check: _Checker, apps: Sequence[AppSpec], problem: str | None) -> None:
    for app in apps:
        if app.build and problem:
            check.errors.append(
                f"config 'apps.{app.name}.build' = {json.dumps(app.build)} cannot be built "
                f"here: building an image needs Docker, and {problem}. Start Docker, or set "
                f"'apps.{app.name}.image' to a pinned image reference instead of build (e.g. "
                "the image CI publishes to GHCR)"
            )


def _check_apps(
    check: _Checker, base_dir: Path, environment: preflight.Environment
) -> tuple[AppSpec, ...]:
    parsed = _raw_apps(check.raw)
    if parsed is None:
        return ()
    nested = _Nested(check)
    apps = nested.object("apps", parsed, tuple(parsed) if isinstance(parsed, dict) else ())
    if apps is None:
        return ()
    found = (_check_app(nested, name, value, base_dir) for name, value in sorted(apps.items()))
    specs = tuple(app for app in found if app is not None)
    _check_docker(check, specs, environment.docker_problem)
    return specs


def load() -> PlatformSettings | AppStackSettings:
    """Read this stack's config and the region's zones, and validate them. A stack whose
    config names a `platformStack` is an app stack: only its apps are read."""
    import pulumi_aws as aws

    config = pulumi.Config()
    raw = {key: config.get(key) for key in KEYS}
    region = pulumi.Config("aws").get("region")
    if not region:
        raise ConfigError(
            "config 'aws:region' is not set: run `pulumi config set aws:region us-east-1`"
        )
    # Pulumi runs the program in the project directory; relative paths in config start there.
    project_dir = Path.cwd()
    platform_stack = not raw.get("platformStack")
    environment = preflight.look_up(
        project_dir,
        docker=builds_images(raw),
        origin=platform_stack and not raw.get("gitopsRepoUrl"),
        # Only a platform stack creates a cluster, and so has a creator to keep out.
        caller=platform_stack and bool(_as_list(raw.get("adminRoleArns"))),
    )
    if not platform_stack:
        return parse_app_stack(
            raw,
            stack=pulumi.get_stack(),
            region=region,
            base_dir=project_dir,
            environment=environment,
        )
    zones = aws.get_availability_zones(state="available").names
    return parse(
        raw,
        stack=pulumi.get_stack(),
        region=region,
        zones=sorted(zones),
        base_dir=project_dir,
        environment=environment,
    )
