"""Stack configuration: read once, validated in one place, handed to components as plain values.

Components never read stack config. `load()` reads every key this program knows, checks it and
returns frozen settings; any mistake stops the program before a single resource is registered,
with one message per bad key naming the key, the value and what is accepted.

Defaults live in `Pulumi.yaml` (the Pulumi CLI applies them, and so does the offline runner), so
this module only says what is *valid*, never what is *default*.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from app_platform import preflight
from app_platform.alerting import AlertReceivers
from app_platform.apps.spec import AppSpec
from app_platform.cluster import NodeGroupArgs
from app_platform.options import OptionsError

# EKS versions in standard support that every pinned chart supports (Envoy Gateway 1.9 needs
# 1.33+). Standard support lasts 14 months from each version's EKS release; drop a version here
# when it leaves standard support, and add a new one once the charts list it.
SUPPORTED_KUBERNETES_VERSIONS = ("1.34", "1.35", "1.36")
NAT_MODES = ("single", "perAz")
# EKS needs subnets in at least two zones for its control plane network interfaces.
MIN_AVAILABILITY_ZONES = 2
# The smallest subnet AWS accepts; a Network Load Balancer also needs 8 free addresses in it.
SMALLEST_SUBNET_PREFIX = 28
MIN_SPOT_INSTANCE_TYPES = 3
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$")
# `<name>-<stack>` starts every resource name, and AWS caps some of them: a node group name
# prefix takes 37 characters (`<prefix>-system-`), an IAM role 64 (`<prefix>-load-balancer-
# controller` plus Pulumi's 8-character suffix). Lowercase only: RDS and S3 fold case.
MAX_PREFIX_LENGTH = 29
STACK_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
INSTANCE_TYPE_PATTERN = re.compile(
    r"^(?P<series>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z-]*)\.(?P<size>[a-z0-9]+)$"
)
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
# A DNS name of at least two labels; hosts become `<app>.<domain>`.
DOMAIN_PATTERN = re.compile(r"^(?=.{4,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
CERTIFICATE_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$"
)
# A Route 53 hosted zone id (the console shows `Z…`; the API may prefix `/hostedzone/`).
HOSTED_ZONE_ID_PATTERN = re.compile(r"^(/hostedzone/)?Z[A-Z0-9]{1,32}$")
GIT_URL_PATTERN = re.compile(r"^(https://[^\s/]+/\S+|git@[^\s:]+:\S+|ssh://\S+)$")
GIT_PATH_PATTERN = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
GIT_REVISION_PATTERN = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
# Prometheus durations (e.g. 15d, 12h); one unit, as the Prometheus CRD expects.
RETENTION_PATTERN = re.compile(r"^[1-9][0-9]*(h|d|w|y)$")
MIN_PASSWORD_LENGTH = 12


class ConfigError(pulumi.RunError):
    """Raised with every configuration mistake found, one per line; Pulumi prints it cleanly."""


@dataclass(frozen=True)
class NetworkSettings:
    cidr: str
    availability_zones: tuple[str, ...]
    nat_mode: str
    flow_logs: bool


@dataclass(frozen=True)
class ClusterSettings:
    kubernetes_version: str
    public_access_cidrs: tuple[str, ...]
    admin_role_arns: tuple[str, ...]
    spot: NodeGroupArgs
    system: NodeGroupArgs
    node_disk_size_gib: int


@dataclass(frozen=True)
class HostedZone:
    """A public Route 53 hosted zone, as the account reports it (`preflight`-style lookup)."""

    zone_id: str
    name: str
    private: bool = False


@dataclass(frozen=True)
class EdgeSettings:
    domain: str
    certificate_arn: str | None
    # The public zone DNS records and the certificate's validation go in; None: DNS is elsewhere.
    hosted_zone: HostedZone | None = None


@dataclass(frozen=True)
class GitOpsSettings:
    repo_url: str
    path: str
    revision: str
    # None: generate one (exported as a secret output).
    admin_password: str | None


@dataclass(frozen=True)
class ObservabilitySettings:
    retention: str
    volume_size_gib: int
    grafana_admin_password: str | None
    alert_receivers: AlertReceivers = field(default_factory=AlertReceivers)


@dataclass(frozen=True)
class PlatformSettings:
    name: str
    stack: str
    region: str
    network: NetworkSettings
    cluster: ClusterSettings
    edge: EdgeSettings
    gitops: GitOpsSettings
    observability: ObservabilitySettings
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
    "hostedZone": "string",
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


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return True


def subnet_plan(vpc_cidr: str, zone_count: int) -> tuple[list[str], list[str]]:
    """Split the VPC into one private and one public subnet per zone.

    The first half of the VPC holds the private subnets, where nodes and pods live (the VPC CNI
    gives every pod a VPC address, so they need the room); the second half holds public subnets
    a quarter of that size, enough for NAT gateways and load balancers.
    """
    vpc = ipaddress.IPv4Network(vpc_cidr, strict=True)
    per_zone_bits = math.ceil(math.log2(zone_count)) if zone_count > 1 else 0
    private_prefix = vpc.prefixlen + 1 + per_zone_bits
    public_prefix = private_prefix + 2
    if public_prefix > SMALLEST_SUBNET_PREFIX:
        raise ValueError(f"public subnets would be /{public_prefix}")
    private_half, public_half = vpc.subnets(prefixlen_diff=1)
    private = list(private_half.subnets(new_prefix=private_prefix))[:zone_count]
    public = list(public_half.subnets(new_prefix=public_prefix))[:zone_count]
    return [str(s) for s in private], [str(s) for s in public]


def _check_sizes(check: _Checker, keys: tuple[str, str, str]) -> tuple[int, int, int]:
    min_key, desired_key, max_key = keys
    sizes = (
        check.integer(min_key, 0, 100),
        check.integer(desired_key, 0, 100),
        check.integer(max_key, 1, 100),
    )
    if not sizes[0] <= sizes[1] <= sizes[2]:
        check.errors.append(
            f"config '{min_key}' = {sizes[0]}, '{desired_key}' = {sizes[1]}, '{max_key}' = "
            f"{sizes[2]} are not valid: expected {min_key} <= {desired_key} <= {max_key}"
        )
    return sizes


def _check_instance_types(check: _Checker, key: str, types: list[str], minimum: int) -> None:
    if len(set(types)) < minimum:
        check.fail(key, types, f"at least {minimum} different instance types of one size")
        return
    parsed = [INSTANCE_TYPE_PATTERN.match(t) for t in types]
    if not all(parsed):
        check.fail(key, types, "instance type names such as m6i.large")
        return
    sizes = {m["size"] for m in parsed if m}
    if len(sizes) > 1:
        check.fail(key, types, f"instance types of one size, got sizes {sorted(sizes)}")
    # Nodes run x86_64 AL2023 images; Graviton families (m7g, c6gn, ...) need ARM images.
    arm = [t for t, m in zip(types, parsed, strict=True) if m and "g" in m["attributes"]]
    if arm:
        check.fail(key, types, f"x86_64 instance types (no Graviton: {arm})")


def _check_name(check: _Checker, stack: str) -> str:
    """The `name` key, and whether `<name>-<stack>` can prefix every resource name."""
    name = check.string(
        "name",
        NAME_PATTERN.fullmatch,
        "3-24 lowercase letters, digits or '-', starting with a letter",
    )
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
    zone_count = check.integer("availabilityZoneCount", MIN_AVAILABILITY_ZONES, 16)
    if len(zones) < zone_count:
        check.fail(
            "availabilityZoneCount",
            zone_count,
            f"at most {len(zones)}, the zones region {region} has ({', '.join(zones)})",
        )
    vpc_cidr = check.string("vpcCidr", _is_cidr, "an IPv4 network in CIDR form, e.g. 10.0.0.0/16")
    if _is_cidr(vpc_cidr) and len(zones) >= zone_count >= MIN_AVAILABILITY_ZONES:
        try:
            subnet_plan(vpc_cidr, zone_count)
        except ValueError as why:
            check.fail(
                "vpcCidr",
                vpc_cidr,
                f"a network large enough for {zone_count} private and {zone_count} public "
                f"subnets of /{SMALLEST_SUBNET_PREFIX} or larger ({why}); try a /16 to /22",
            )
    nat_mode = check.string("natGateways", lambda v: v in NAT_MODES, " or ".join(NAT_MODES))
    flow_logs = check.boolean("vpcFlowLogs")

    version = check.string(
        "kubernetesVersion",
        lambda v: v in SUPPORTED_KUBERNETES_VERSIONS,
        f"one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)} (EKS standard support)",
    )
    cidrs = check.string_list("publicAccessCidrs")
    if check.raw.get("publicAccessCidrs") is not None and (
        not cidrs or not all(map(_is_cidr, cidrs))
    ):
        check.fail(
            "publicAccessCidrs",
            cidrs,
            "a non-empty list of IPv4 CIDRs allowed to reach the public API endpoint, "
            'e.g. ["203.0.113.7/32"]',
        )
    admins = check.string_list("adminRoleArns")
    bad_arns = [a for a in admins if not ROLE_ARN_PATTERN.fullmatch(a)]
    if bad_arns:
        check.fail("adminRoleArns", admins, f"IAM role ARNs (not: {bad_arns})")
    _check_creator(check, admins, environment.caller_arn)

    spot_types = check.string_list("spotInstanceTypes")
    if check.raw.get("spotInstanceTypes") is not None:
        _check_instance_types(check, "spotInstanceTypes", spot_types, MIN_SPOT_INSTANCE_TYPES)
    spot = NodeGroupArgs(
        tuple(spot_types), *_check_sizes(check, ("spotMinSize", "spotDesiredSize", "spotMaxSize"))
    )
    system_type = check.string(
        "systemInstanceType", INSTANCE_TYPE_PATTERN.fullmatch, "an instance type such as t3.large"
    )
    system_count = check.integer("systemNodeCount", 1, 10)
    system = NodeGroupArgs((system_type,), system_count, system_count, system_count)
    disk = check.integer("nodeDiskSizeGib", 20, 1000)

    edge = _check_edge(check, region, hosted_zone)
    gitops, observability = _check_addons(check, region, environment.git_origin)
    apps = _check_apps(check, base_dir or Path.cwd(), environment)

    if check.errors:
        raise ConfigError("invalid stack configuration:\n  - " + "\n  - ".join(check.errors))
    return PlatformSettings(
        name=name,
        stack=stack,
        region=region,
        network=NetworkSettings(vpc_cidr, tuple(zones[:zone_count]), nat_mode, flow_logs),
        cluster=ClusterSettings(
            kubernetes_version=version,
            public_access_cidrs=tuple(cidrs),
            admin_role_arns=tuple(admins),
            spot=spot,
            system=system,
            node_disk_size_gib=disk,
        ),
        edge=edge,
        gitops=gitops,
        observability=observability,
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


def _check_repo_url(check: _Checker, origin: preflight.GitOrigin) -> str:
    """`gitopsRepoUrl`, or when it is empty, the checkout's own origin."""
    if check.raw.get("gitopsRepoUrl") not in (None, ""):
        return check.string(
            "gitopsRepoUrl",
            GIT_URL_PATTERN.fullmatch,
            "a git repository URL (https://host/owner/repo.git or git@host:owner/repo.git)",
        )
    if origin.url is None:
        check.errors.append(
            f"config 'gitopsRepoUrl' is empty, which means this checkout's git origin, and "
            f"{origin.problem}: set gitopsRepoUrl to the URL of a repository Argo CD can read "
            "(pulumi config set gitopsRepoUrl https://github.com/<owner>/<repo>.git)"
        )
        return ""
    return origin.url


def _optional_password(check: _Checker, key: str) -> str | None:
    value = check.raw.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) < MIN_PASSWORD_LENGTH:
        # The value itself is a secret: say what is wrong without printing it.
        check.errors.append(
            f"config '{key}' = [secret] is not valid: expected at least {MIN_PASSWORD_LENGTH} "
            "characters, or leave it unset to have one generated"
        )
        return None
    return value


def _check_certificate(check: _Checker, region: str) -> str | None:
    certificate = check.raw.get("certificateArn") or None
    if certificate is None:
        return None
    match = CERTIFICATE_ARN_PATTERN.fullmatch(certificate) if isinstance(certificate, str) else None
    if not match:
        check.fail("certificateArn", certificate, "an ACM certificate ARN, or empty for HTTP only")
    elif match["region"] != region:
        check.fail(
            "certificateArn",
            certificate,
            f"a certificate in the stack's region {region} (an NLB uses only its own region's)",
        )
    return certificate if isinstance(certificate, str) else None


def hosted_zone_query(value: str) -> dict[str, Any]:
    """How to ask Route 53 for the zone `hostedZone` names: by id, or by (public) name."""
    if HOSTED_ZONE_ID_PATTERN.fullmatch(value):
        return {"zone_id": value.removeprefix("/hostedzone/")}
    return {"name": value.rstrip("."), "private_zone": False}


def _check_hosted_zone(
    check: _Checker, domain: str, certificate: str | None, zone: HostedZone | str | None
) -> HostedZone | None:
    """`hostedZone`: a public zone of this account that `domain` is (or is under), and not
    together with `certificateArn` (the stack then makes its own certificate)."""
    value = check.raw.get("hostedZone") or None
    if value is None:
        return None
    if not isinstance(value, str):
        check.fail("hostedZone", value, "a Route 53 hosted zone id (Z...) or name")
        return None
    if certificate is not None:
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
    if domain and domain != zone_name and not domain.endswith(f".{zone_name}"):
        check.errors.append(
            f"config 'hostedZone' = {json.dumps(value)} (zone {zone_name}) does not match "
            f"'domain' = {json.dumps(domain)}: expected domain to be {zone_name} or a name "
            f"under it (e.g. dev.{zone_name})"
        )
    return HostedZone(zone.zone_id.removeprefix("/hostedzone/"), zone_name, zone.private)


def _check_edge(check: _Checker, region: str, zone: HostedZone | str | None) -> EdgeSettings:
    domain = check.string(
        "domain",
        DOMAIN_PATTERN.fullmatch,
        "a lowercase DNS name such as dev.app-platform.test (hosts become <app>.<domain>)",
    )
    certificate = _check_certificate(check, region)
    return EdgeSettings(domain, certificate, _check_hosted_zone(check, domain, certificate, zone))


def _check_addons(
    check: _Checker, region: str, origin: preflight.GitOrigin
) -> tuple[GitOpsSettings, ObservabilitySettings]:
    repo_url = _check_repo_url(check, origin)
    path = check.string(
        "gitopsPath",
        lambda v: GIT_PATH_PATTERN.fullmatch(v) is not None and ".." not in v.split("/"),
        "a directory inside the repository, relative, without '..' (e.g. gitops/apps)",
    )
    revision = check.string(
        "gitopsRevision", GIT_REVISION_PATTERN.fullmatch, "a branch, tag or commit (e.g. main)"
    )
    retention = check.string(
        "prometheusRetention",
        RETENTION_PATTERN.fullmatch,
        "a duration in hours, days, weeks or years, such as 15d",
    )
    volume = check.integer("prometheusVolumeSizeGib", 10, 1000)
    return (
        GitOpsSettings(repo_url, path, revision, _optional_password(check, "argocdAdminPassword")),
        ObservabilitySettings(
            retention,
            volume,
            _optional_password(check, "grafanaAdminPassword"),
            _check_alert_receivers(check),
        ),
    )


def _check_alert_receivers(check: _Checker) -> AlertReceivers:
    """The alert* keys; AlertReceivers says what is wrong with them, named by config key."""

    def optional(key: str) -> str | None:
        value = check.raw.get(key)
        if value not in (None, "") and not isinstance(value, str):
            check.fail(key, "[secret]" if key in SECRET_KEYS else value, "a string")
            return None
        return value or None

    email_to = check.string_list("alertEmailTo")
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
