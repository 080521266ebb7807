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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pulumi
from pydantic import Field
from pydantic.fields import FieldInfo

from app_platform import preflight
from app_platform.apps.spec import APPS_DESCRIPTION, AppSpec
from app_platform.cluster import ClusterOptions
from app_platform.edge import EdgeOptions, certificate_region_problem
from app_platform.gitops import GitOpsOptions
from app_platform.karpenter import KarpenterOptions, KarpenterSettings
from app_platform.network import NetworkOptions
from app_platform.observability import ObservabilityOptions
from app_platform.observability.alerting import AlertReceivers
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
# A Route 53 hosted zone id (the console shows `Z…`; the API may prefix `/hostedzone/`).
HOSTED_ZONE_ID_PATTERN = re.compile(r"^(/hostedzone/)?Z[A-Z0-9]{1,32}$")


class ConfigError(pulumi.RunError):
    """Raised with every configuration mistake found, one per line; Pulumi prints it cleanly."""


@dataclass(frozen=True)
class HostedZone:
    """A Route 53 hosted zone, as the account reports it."""

    zone_id: str
    name: str
    private: bool = False


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
    # Karpenter's workload nodes (the `karpenter` key), used with nodeProvisioner karpenter.
    karpenter: KarpenterOptions = field(default_factory=KarpenterOptions)
    # The public zone DNS records and the certificate's validation go in (`hostedZone`, looked
    # up in Route 53); None: DNS is done elsewhere.
    hosted_zone: HostedZone | None = None
    # The apps this stack runs on the platform (the `apps` map), sorted by name.
    apps: tuple[AppSpec, ...] = ()
    # Set only for an app stack (see AppStackSettings); a platform stack has none.
    platform_stack: str | None = None
    # Why Docker here cannot build a multi-platform image (preflight); None when it can. The
    # stack refuses app builds with it when its nodes have several architectures.
    multi_platform_problem: str | None = None

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


class StackKeys(Options):
    """The stack-level keys: what the stack is called, whether it is an app stack, and the
    apps it runs. `parse` and `parse_app_stack` check them (their messages say what a resource
    name or a stack reference needs); this model gives their types, defaults and descriptions."""

    name: str = Field(
        DEFAULT_NAME,
        description="Short name; every resource name starts with <name>-<stack> (also the EKS "
        "cluster name).",
    )
    platform_stack: str = Field(
        "",
        alias="platformStack",
        description="Makes this an app stack: the fully qualified platform stack "
        "(<org>/app-platform/<stack>) whose cluster, Gateway and network its apps run on. "
        "Empty: this stack is a platform stack.",
    )
    apps: dict[str, Any] = Field(
        default_factory=dict,
        description=APPS_DESCRIPTION,
        json_schema_extra={
            "summary": "The apps this stack runs: see [Apps](#apps-on-the-platform)."
        },
    )


# The components whose options come from stack config, each from its own keys.
COMPONENT_OPTIONS: tuple[type[Options], ...] = (
    NetworkOptions,
    ClusterOptions,
    EdgeOptions,
    GitOpsOptions,
    ObservabilityOptions,
    AlertReceivers,
    KarpenterSettings,
)
# Config keys that fill a nested part of a component's options: key -> (field alias, alias).
NESTED_KEYS: dict[str, tuple[str, str]] = {
    "spotInstanceTypes": ("spot", "instanceTypes"),
    "spotMinSize": ("spot", "minSize"),
    "spotDesiredSize": ("spot", "desiredSize"),
    "spotMaxSize": ("spot", "maxSize"),
}


@dataclass(frozen=True)
class ConfigKey:
    """One key of the project's config namespace and the model field that owns it."""

    key: str
    field: FieldInfo
    # Its JSON schema, as the owning model gives it (for the Pulumi type).
    schema: Mapping[str, Any]
    # The default of the key (a nested group's default, for a key of a group).
    default: Any
    # The group's title for a key of a nested group ("Spot"), else "".
    group: str = ""

    @property
    def type(self) -> str:
        """The Pulumi.yaml type; fields that take a string or a Pulumi Output (secrets given
        in code) have no JSON schema type and are strings in config."""
        types = [self.schema.get("type")] + [t.get("type") for t in self.schema.get("anyOf", [])]
        return next((t for t in types if t and t != "null"), "string")

    @property
    def required(self) -> bool:
        """No default: a key of a group takes the group's default."""
        return not self.group and self.field.is_required()

    @property
    def summary(self) -> str | None:
        """The README's own text (Markdown) for a description too long for a table."""
        return (self.field.json_schema_extra or {}).get("summary")

    @property
    def secret(self) -> bool:
        return bool((self.field.json_schema_extra or {}).get("secret"))


def _model_keys(model: type[Options]) -> list[ConfigKey]:
    """The model's config keys in field order; a nested group gives its NESTED_KEYS instead."""
    schema = model.model_json_schema(by_alias=True)
    found = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        group = [(key, part) for key, (owner, part) in NESTED_KEYS.items() if owner == alias]
        if not group:
            default = info.get_default(call_default_factory=True)
            found.append(ConfigKey(alias, info, schema["properties"][alias], default))
            continue
        nested: type[Options] = info.annotation
        nested_schema = nested.model_json_schema(by_alias=True)["properties"]
        for key, part in group:
            field_name, field = next(
                (n, f) for n, f in nested.model_fields.items() if f.alias == part
            )
            default = getattr(info.default, field_name)
            found.append(ConfigKey(key, field, nested_schema[part], default, info.title or ""))
    return found


# Every key of the project namespace this program reads, owned by the models above: the one
# source of Pulumi.yaml's config block and the README's table (`configschema --write`).
CONFIG_KEYS: tuple[ConfigKey, ...] = tuple(
    key for model in (StackKeys, *COMPONENT_OPTIONS) for key in _model_keys(model)
)
# Each key's Pulumi.yaml type.
KEYS: dict[str, str] = {key.key: key.type for key in CONFIG_KEYS}
# Keys whose values are secrets: never echoed in an error message.
SECRET_KEYS = tuple(key.key for key in CONFIG_KEYS if key.secret)


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
    hosted_zone: HostedZone | str | None = None,
) -> PlatformSettings:
    """Validate raw config values (strings as Pulumi stores them, or plain values).

    `zones` are the region's available zones, `hosted_zone` what Route 53 answered for the
    `hostedZone` value (the zone, or why there is none; None when unset), and `environment`
    what the machine and AWS say (Docker, the git origin, the caller: `preflight`); nothing
    here calls AWS or runs anything, so tests can drive it. `base_dir` is where relative paths
    in the config (app dashboards and build contexts) start: the project.
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
    zone = _check_hosted_zone(check, edge, hosted_zone)
    alert_receivers = _component(check, AlertReceivers)
    karpenter = _component(check, KarpenterSettings)
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
        karpenter=karpenter.karpenter if karpenter else KarpenterOptions(),
        hosted_zone=zone,
        apps=apps,
        multi_platform_problem=environment.multi_platform_problem,
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


def hosted_zone_query(value: str) -> dict[str, Any]:
    """How to ask Route 53 for the zone `hostedZone` names: by id, or by (public) name."""
    if HOSTED_ZONE_ID_PATTERN.fullmatch(value):
        return {"zone_id": value.removeprefix("/hostedzone/")}
    return {"name": value.rstrip("."), "private_zone": False}


def _check_hosted_zone(
    check: _Checker, edge: EdgeOptions | None, zone: HostedZone | str | None
) -> HostedZone | None:
    """`hostedZone`: a public zone of this account that `domain` is (or is under), and not
    together with `certificateArn` (the stack then makes its own certificate). Checked from
    the raw keys too when another edge key is wrong, so every problem shows at once."""
    value = check.raw.get("hostedZone") or ""
    certificate = check.raw.get("certificateArn") or ""
    domain = edge.domain if edge else str(check.raw.get("domain") or "")
    if not value or not isinstance(value, str):
        return None
    if certificate:
        check.errors.append(
            f"config 'hostedZone' = {json.dumps(value)} and 'certificateArn' = "
            f"{json.dumps(certificate)} are both set: with a hosted zone the stack makes and "
            "validates its own certificate for *.<domain>; unset certificateArn (or hostedZone, "
            "to keep the given certificate and do DNS elsewhere)"
        )
    if not isinstance(zone, HostedZone):
        why = f" (Route 53 says: {zone})" if zone else ""
        check.fail(
            "hostedZone", value, f"a Route 53 hosted zone of this account, by id or name{why}"
        )
        return None
    zone_name = zone.name.rstrip(".").lower()
    if zone.private:
        check.fail(
            "hostedZone",
            value,
            f"a public hosted zone ({zone_name} is private: ACM cannot validate through it)",
        )
    if domain != zone_name and not domain.endswith(f".{zone_name}"):
        check.errors.append(
            f"config 'hostedZone' = {json.dumps(value)} (zone {zone_name}) does not match "
            f"'domain' = {json.dumps(domain)}: expected domain to be {zone_name} or a name "
            f"under it (e.g. dev.{zone_name})"
        )
    return HostedZone(zone.zone_id.removeprefix("/hostedzone/"), zone_name, zone.private)


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
# Apps: the `apps` map (name -> settings); adding an app is a config entry. The rules are the
# AppSpec model's (app_platform.apps.spec): the same whether an app comes from here or code.
# ---------------------------------------------------------------------------------------------


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
    if not isinstance(parsed, dict):
        check.fail("apps", parsed, "an object")
        return ()
    specs = []
    for name, raw in sorted(parsed.items()):
        try:
            specs.append(
                AppSpec.from_config(raw, name=name, prefix=f"apps.{name}", base_dir=base_dir)
            )
        except OptionsError as error:
            check.errors += [f"config {problem}" for problem in error.problems]
    _check_docker(check, specs, environment.docker_problem)
    return tuple(specs)


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
        hosted_zone=look_up_hosted_zone(raw.get("hostedZone")),
    )


def look_up_hosted_zone(value: Any) -> HostedZone | str | None:
    """The Route 53 zone `hostedZone` names, asked at preview, or why there is none (None when
    unset or not a string, which `parse` reports)."""
    import pulumi_aws as aws

    if not value or not isinstance(value, str):
        return None
    try:
        found = aws.route53.get_zone(**hosted_zone_query(value))
    except Exception as error:  # not found, or no permission: reported as a config problem
        return str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return HostedZone(found.zone_id, found.name, bool(found.private_zone))
