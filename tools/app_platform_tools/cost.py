"""A monthly cost estimate of a stack, from its offline plan, as a Markdown table.

    python -m app_platform_tools.cost [--stack dev] [--project DIR]      # plan offline, price it
    python -m app_platform_tools.cost PLAN.json                          # price a JSON plan
    python -m app_platform_tools.cost BASE.json HEAD.json                # the difference
    python -m app_platform_tools.cost --stack dev --base BASE.json       # offline head vs a file
    python -m app_platform_tools.cost --stack dev --write-readme         # README's cost table

Every billable resource in the plan gets a line (resource, what, USD per month) priced from the
dated table `prices/aws.json` under its stated usage assumptions; a billable type this module
does not know is listed as not priced, never skipped, and the types known to cost nothing are
listed in FREE_TYPES. It also prints the share of node vCPU on spot capacity, which the platform
aims to keep at 70 % or more.

Plans are what `app_platform_tools.plan --json` writes (pull requests from forks included), so
they are untrusted data: every value taken from one is printed in a code span. Standard library
only at import, like `plandiff`; planning a stack offline imports the Pulumi SDK when asked.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app_platform_tools import plandiff, prices

SPOT_TARGET = 0.70
README_START = (
    "<!-- cost-table:start (python -m app_platform_tools.cost --stack dev --write-readme) -->"
)
README_END = "<!-- cost-table:end -->"
# An NLB gets one public IPv4 address per zone it serves; without the plan's public subnets to
# count, the platform's minimum zone count.
DEFAULT_NLB_ZONES = 2
MAX_NAME_CHARS = 60
# The table's order: compute first, then storage, network, data and the rest; plan order within.
ORDER = [
    "EKS control plane",
    "Node group",
    "Karpenter NodePool",
    "EC2 instance",
    "EBS volumes",
    "NAT gateway",
    "Public IPv4",
    "Network Load Balancer",
    "RDS instance",
    "RDS storage",
    "CloudWatch logs",
    "CloudWatch alarm",
    "KMS key",
    "SQS queue",
    "ECR repository",
]
NLB_CLASS = "service.k8s.aws/nlb"
_LB = "service.beta.kubernetes.io/aws-load-balancer-"
NLB_TYPES = {"external", "nlb", "nlb-ip"}  # aws-load-balancer-type values that make an NLB
EXPECTED_VCPU = "app-platform.io/expected-vcpu"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
# Where RDS puts a database's log exports: <this><identifier>/<export>.
RDS_LOG_GROUPS = "/aws/rds/instance/"
EBS_PROVISIONERS = {"ebs.csi.aws.com": "gp3", "kubernetes.io/aws-ebs": "gp2"}  # and their default
# A requirement a NodePool leaves out allows every value (karpenter `Requirements.Get`), and of
# the capacity types it allows Karpenter launches reserved first, then spot, then on-demand.
CAPACITY_TYPES = ["reserved", "spot", "on-demand"]

# Types that cost nothing themselves. Where a free resource makes billable ones (a launch template
# for node groups, a flow log writing to a log group, an image pushed to a repository), those are
# priced on their own lines. Kubernetes objects are free unless priced below (a LoadBalancer
# Service, a volume claim, a NodePool): Helm releases included, since the volumes and load
# balancers the platform's charts need are objects the stack owns.
FREE_TYPES = {
    "aws:acm/certificate:Certificate",  # public certificates
    "aws:acm/certificateValidation:CertificateValidation",
    "aws:cloudwatch/eventRule:EventRule",  # AWS service events on the default bus
    "aws:cloudwatch/eventTarget:EventTarget",
    "aws:ec2/eipAssociation:EipAssociation",
    "aws:ec2/flowLog:FlowLog",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/networkInterface:NetworkInterface",  # its public address, if any, is an EIP
    "aws:ec2/route:Route",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/securityGroupRule:SecurityGroupRule",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/tag:Tag",
    "aws:ec2/vpc:Vpc",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy",
    "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:eks/addon:Addon",  # EKS add-ons carry no charge of their own
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "aws:kms/alias:Alias",
    "aws:rds/parameterGroup:ParameterGroup",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:route53/record:Record",  # alias queries to AWS resources are free
    "aws:sqs/queuePolicy:QueuePolicy",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "docker-build:index:Image",  # built by the deployer; stored in its ECR repository
    NODE_CLASS,  # priced with the NodePools that use it
}
FREE_PREFIXES = (
    "aws:iam/",
    "kubernetes:",
    "random:",
    "pulumi:",
    "pulumi-python:dynamic/",
    "app-platform:",  # the library's components: their children are priced
)


@dataclass(frozen=True)
class Line:
    key: str  # stable across two plans of one stack: URN and part
    resource: str
    what: str
    monthly: float


@dataclass
class Estimate:
    stack: str
    region: str
    as_of: str
    lines: list[Line] = field(default_factory=list)
    ceilings: list[Line] = field(default_factory=list)
    unpriced: dict[str, list[str]] = field(default_factory=dict)
    node_vcpu: float = 0.0
    spot_vcpu: float = 0.0

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def spot_share(self) -> float | None:
        return self.spot_vcpu / self.node_vcpu if self.node_vcpu else None

    def not_priced(self, resource: dict[str, Any], reason: str) -> list[Line]:
        self.unpriced.setdefault(str(resource.get("type")), []).append(reason)
        return []


# ---------------------------------------------------------------------------------------------
# Reading the plan
# ---------------------------------------------------------------------------------------------


def name(value: Any) -> str:
    """A value from the plan, safe in a Markdown table cell."""
    text = str(value).replace("|", "/")
    if len(text) > MAX_NAME_CHARS:
        text = f"{text[: MAX_NAME_CHARS - 1]}…"
    return plandiff.code(text)


def dig(value: Any, *path: str | int, default: Any = None) -> Any:
    """The value at `path` (keys and list indexes) inside `value`, else `default`."""
    for part in path:
        if isinstance(part, int):
            found = isinstance(value, list) and len(value) > part
        else:
            found = isinstance(value, dict) and part in value
        if not found:
            return default
        value = value[part]
    return value


_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?|m)?\s*$")
_GIB = {None: 1 / 2**30, "Ki": 1 / 2**20, "Mi": 1 / 2**10, "Gi": 1, "Ti": 2**10, "Pi": 2**20}
_GIB |= {"K": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30, "T": 1e12 / 2**30, "P": 1e15 / 2**30}


def gib(quantity: Any) -> float | None:
    """A Kubernetes storage quantity ("40Gi", "100G") in GiB; a bare number is GiB (EBS inputs)."""
    if isinstance(quantity, int | float) and not isinstance(quantity, bool):
        return float(quantity)
    match = _QUANTITY.match(str(quantity or ""))
    if not match or match[2] == "m":
        return None
    return float(match[1]) * _GIB[match[2]]


def number(value: Any, default: float) -> float:
    """A count or size from the plan (an int, or a string of digits), else `default`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
        return float(value)
    return default


def cpus(quantity: Any) -> float | None:
    """A Kubernetes CPU quantity ("100", "500m", 8) in vCPUs."""
    if isinstance(quantity, int | float) and not isinstance(quantity, bool):
        return float(quantity)
    match = _QUANTITY.match(str(quantity or ""))
    if not match or match[2] not in (None, "m"):
        return None
    return float(match[1]) / (1000 if match[2] == "m" else 1)


class Plan:
    """Lookups over one JSON plan's resources."""

    def __init__(self, plan: dict[str, Any]):
        self.resources: list[dict[str, Any]] = list(plan.get("resources") or [])
        self.by_urn = {str(r.get("urn")): r for r in self.resources}

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r.get("type") == type_]

    def parent_type(self, resource: dict[str, Any]) -> str:
        return str(self.by_urn.get(str(resource.get("parent")), {}).get("type", ""))

    def named(self, type_: str, wanted: Any, by: Callable[[dict], Any]) -> dict[str, Any] | None:
        """The resource of `type_` whose `by` is `wanted`, else the only one of that type."""
        candidates = self.of_type(type_)
        found = [r for r in candidates if by(r) == wanted]
        if found:
            return found[0]
        return candidates[0] if len(candidates) == 1 else None

    def nlb_zones(self) -> int:
        subnets = self.of_type("aws:ec2/subnet:Subnet")
        public = [
            s for s in subnets if "kubernetes.io/role/elb" in dig(s, "inputs", "tags", default={})
        ]
        zones = {dig(s, "inputs", "availabilityZone") for s in public} - {None}
        return len(zones) or DEFAULT_NLB_ZONES


def region_of(plan: dict[str, Any]) -> str | None:
    """The plan's AWS region: written by `plan --json`, or read off its subnets' zones."""
    if isinstance(plan.get("region"), str) and plan["region"]:
        return plan["region"]
    for resource in Plan(plan).of_type("aws:ec2/subnet:Subnet"):
        zone = dig(resource, "inputs", "availabilityZone")
        if isinstance(zone, str) and zone[-1:].isalpha():
            return zone[:-1]
    return None


# ---------------------------------------------------------------------------------------------
# Pricing each resource type
# ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    plan: Plan
    prices: prices.Prices
    estimate: Estimate

    def monthly(self, section: str, key: str, quantity: float = 1.0) -> float:
        return self.prices.price(section, key) * quantity * self.prices.hours

    def volume_line(
        self, r: dict[str, Any], part: str, what: str, size: float, count: float, kind: str
    ) -> list[Line]:
        """EBS volumes of `r`: `count` of `size` GiB of type `kind`."""
        rate = self.prices.ebs_gb_month(kind)
        if rate is None:
            return self.estimate.not_priced(
                r, f"{name(r.get('name'))}: EBS volume type {name(kind)}"
            )
        key = f"{r['urn']}#{part}" if part else r["urn"]
        return [Line(key, "EBS volumes", what, rate * size * count)]


Pricer = Callable[[dict[str, Any], Context], list[Line]]


def _control_plane(r: dict[str, Any], ctx: Context) -> list[Line]:
    if ctx.plan.parent_type(r) == "eks:index:Cluster":
        return []  # the component's own line prices it
    what = f"{name(r.get('name'))}, a Kubernetes version in standard support"
    return [Line(r["urn"], "EKS control plane", what, ctx.monthly("eks", "cluster_hour"))]


def _root_volume(r: dict[str, Any], ctx: Context) -> tuple[float, str]:
    """Size (GiB) and type of a managed node group's node root volume."""
    template = ctx.plan.named(LAUNCH_TEMPLATE, r.get("name"), lambda t: t.get("name"))
    ebs = dig(template, "inputs", "blockDeviceMappings", 0, "ebs", default={})
    ebs = ebs if isinstance(ebs, dict) else {}
    default = number(
        dig(r, "inputs", "diskSize"), float(ctx.prices.assume("default_root_volume_gib"))
    )
    return number(ebs.get("volumeSize"), default), str(ebs.get("volumeType") or "gp3")


def _node_group(r: dict[str, Any], ctx: Context) -> list[Line]:
    if ctx.plan.parent_type(r) == "eks:index:ManagedNodeGroup":
        return []
    inputs = r.get("inputs", {})
    types = [str(t) for t in inputs.get("instanceTypes") or ["t3.medium"]]  # EKS's default
    spot = inputs.get("capacityType") == "SPOT"
    least = number(dig(inputs, "scalingConfig", "minSize"), 1)
    count = int(number(dig(inputs, "scalingConfig", "desiredSize"), least))
    hourly = [ctx.prices.hourly(t, spot) for t in types]
    if None in hourly or ctx.prices.vcpu(types[0]) is None:
        return ctx.estimate.not_priced(r, f"instance types {name(','.join(types))}")
    # On-demand managed node groups launch the first type listed; spot ones spread over all.
    price = sorted(hourly)[len(hourly) // 2] if spot else hourly[0]  # type: ignore[type-var]
    vcpu = count * ctx.prices.vcpu(types[0])  # type: ignore[operator]
    ctx.estimate.node_vcpu += vcpu
    ctx.estimate.spot_vcpu += vcpu if spot else 0
    market = "spot" if spot else "on-demand"
    what = f"{name(r.get('name'))}: {count} x {name(', '.join(types))} {market}"
    size, kind = _root_volume(r, ctx)
    volumes = f"{name(r.get('name'))} root volumes: {count} x {size:g} GiB {kind}"
    return [
        Line(f"{r['urn']}#nodes", "Node group", what, count * price * ctx.prices.hours),  # type: ignore[operator]
        *ctx.volume_line(r, "root", volumes, size, count, kind),
    ]


# What each NodePool requirement key reads off an instance type (name and table facts).
_REQUIREMENT_VALUES: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "kubernetes.io/arch": lambda _n, facts: str(facts["arch"]),
    "karpenter.k8s.aws/instance-category": lambda _n, facts: str(facts["category"]),
    "karpenter.k8s.aws/instance-generation": lambda _n, facts: str(facts["generation"]),
    "karpenter.k8s.aws/instance-family": lambda n, _facts: n.split(".")[0],
    "node.kubernetes.io/instance-type": lambda n, _facts: n,
}


def _meets(value: str, operator: str, values: list[str]) -> bool:
    if operator == "In":
        return value in values
    if operator == "NotIn":
        return value not in values
    if operator in ("Gt", "Lt") and values and value.isdigit() and str(values[0]).isdigit():
        return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])
    return operator in ("Exists", "")


def _requirements(pool: dict[str, Any]) -> list[dict[str, Any]]:
    found = dig(pool, "inputs", "spec", "template", "spec", "requirements", default=[])
    return [req for req in found if isinstance(req, dict)]


def _allowed(pool: dict[str, Any], key: str, value: str) -> bool:
    return all(
        _meets(value, str(req.get("operator", "")), [str(v) for v in req.get("values") or []])
        for req in _requirements(pool)
        if req.get("key") == key
    )


def pool_types(pool: dict[str, Any], known: dict[str, dict[str, Any]]) -> list[str]:
    """The table's instance types a NodePool's requirements allow (keys Karpenter reads off the
    instance type; others, like zones, do not change the price here)."""
    return [
        type_name
        for type_name, facts in known.items()
        if all(
            _allowed(pool, key, value_of(type_name, facts))
            for key, value_of in _REQUIREMENT_VALUES.items()
        )
    ]


def capacity_types(pool: dict[str, Any]) -> list[str]:
    return [kind for kind in CAPACITY_TYPES if _allowed(pool, "karpenter.sh/capacity-type", kind)]


def _pool_root_gib(pool: dict[str, Any], ctx: Context) -> tuple[float, str]:
    """Root volume size and type of one node, from the EC2NodeClass the pool names."""
    wanted = dig(pool, "inputs", "spec", "template", "spec", "nodeClassRef", "name")
    node_class = ctx.plan.named(NODE_CLASS, wanted, lambda c: dig(c, "inputs", "metadata", "name"))
    mappings = dig(node_class, "inputs", "spec", "blockDeviceMappings", default=[]) or []
    sizes = [gib(dig(m, "ebs", "volumeSize")) for m in mappings]
    if not mappings or None in sizes:
        return float(ctx.prices.assume("default_root_volume_gib")), "gp3"
    return sum(sizes), str(dig(mappings, 0, "ebs", "volumeType") or "gp3")  # type: ignore[arg-type]


def _node_pool(r: dict[str, Any], ctx: Context) -> list[Line]:
    expected = dig(r, "inputs", "metadata", "annotations", EXPECTED_VCPU)
    if not str(expected).isdigit():
        return ctx.estimate.not_priced(r, f"{name(r.get('name'))}: no integer {EXPECTED_VCPU}")
    vcpu = int(expected)
    # Reserved capacity (capacity reservations) is not in the table: priced as spot or on-demand.
    spot = "spot" in capacity_types(r)
    types = pool_types(r, ctx.prices.instance_types)
    rate = ctx.prices.vcpu_hour(types, spot)
    if rate is None:
        return ctx.estimate.not_priced(
            r, f"{name(r.get('name'))}: no priced type meets its requirements"
        )
    ctx.estimate.node_vcpu += vcpu
    ctx.estimate.spot_vcpu += vcpu if spot else 0
    market = "spot" if spot else "on-demand"
    quantile = ctx.prices.assume("nodepool_price_quantile")
    what = (
        f"{name(r.get('name'))}: {vcpu} vCPU expected, {market}, {len(types)} instance types "
        f"(${rate:.4f}/vCPU-h, {quantile:g} quantile)"
    )
    lines = [Line(f"{r['urn']}#nodes", "Karpenter NodePool", what, vcpu * rate * ctx.prices.hours)]
    size, kind = _pool_root_gib(r, ctx)
    node_vcpu = ctx.prices.assume("nodepool_node_vcpu")
    nodes = math.ceil(vcpu / node_vcpu)
    volumes = f"{name(r.get('name'))} root volumes: {nodes} x {size:g} GiB {kind}"
    volumes += f" ({node_vcpu}-vCPU nodes)"
    lines += ctx.volume_line(r, "root", volumes, size, nodes, kind)
    limit = cpus(dig(r, "inputs", "spec", "limits", "cpu"))
    if limit is not None:
        ceiling = f"{name(r.get('name'))}: at most {limit:g} vCPU (spec.limits.cpu), {market}"
        ctx.estimate.ceilings.append(
            Line(
                f"{r['urn']}#limit", "Karpenter NodePool", ceiling, limit * rate * ctx.prices.hours
            )
        )
    return lines


def _nat_gateway(r: dict[str, Any], ctx: Context) -> list[Line]:
    gb = ctx.prices.assume("nat_gb_per_month")
    data = ctx.prices.price("vpc", "nat_gateway_gb") * gb
    what = f"{name(r.get('name'))}: hours + {gb} GB processed (assumed); its address: public IPv4"
    return [Line(r["urn"], "NAT gateway", what, ctx.monthly("vpc", "nat_gateway_hour") + data)]


def _elastic_ip(r: dict[str, Any], ctx: Context) -> list[Line]:
    what = f"{name(r.get('name'))} (Elastic IP)"
    return [Line(r["urn"], "Public IPv4", what, ctx.monthly("vpc", "public_ipv4_hour"))]


def _instance(r: dict[str, Any], ctx: Context) -> list[Line]:
    inputs = r.get("inputs", {})
    instance_type = str(inputs.get("instanceType"))
    spot = dig(inputs, "instanceMarketOptions", "marketType") == "spot"
    hourly = ctx.prices.hourly(instance_type, spot)
    if hourly is None:
        return ctx.estimate.not_priced(r, f"instance type {name(instance_type)}")
    market = "spot" if spot else "on-demand"
    what = f"{name(r.get('name'))}: {name(instance_type)} {market}"
    lines = [Line(f"{r['urn']}#instance", "EC2 instance", what, hourly * ctx.prices.hours)]
    default = float(ctx.prices.assume("instance_root_volume_gib"))
    size = number(dig(inputs, "rootBlockDevice", "volumeSize"), default)
    kind = str(dig(inputs, "rootBlockDevice", "volumeType") or "gp3")
    volume = f"{name(r.get('name'))} root volume: {size:g} GiB {kind}"
    lines += ctx.volume_line(r, "root", volume, size, 1, kind)
    if inputs.get("associatePublicIpAddress"):
        address = f"{name(r.get('name'))} (instance address)"
        lines.append(
            Line(f"{r['urn']}#ipv4", "Public IPv4", address, ctx.monthly("vpc", "public_ipv4_hour"))
        )
    return lines


def _network_load_balancer(
    r: dict[str, Any], ctx: Context, annotations: dict[str, Any], lb_class: Any
) -> list[Line]:
    if annotations.get(f"{_LB}type") not in NLB_TYPES and lb_class != NLB_CLASS:
        return ctx.estimate.not_priced(
            r, f"{name(r.get('name'))}: not an NLB (a Classic Load Balancer)"
        )
    public = annotations.get(f"{_LB}scheme") == "internet-facing"
    listed = annotations.get(f"{_LB}subnets")
    zones = len(str(listed).split(",")) if listed else ctx.plan.nlb_zones()
    lcu = ctx.prices.assume("nlb_lcu")
    hours = ctx.monthly("elb", "nlb_hour") + ctx.monthly("elb", "nlb_lcu_hour", lcu)
    addresses = zones * ctx.monthly("vpc", "public_ipv4_hour") if public else 0.0
    reach = f"{zones} public IPv4 (one per zone)" if public else "internal: no public address"
    what = f"{name(r.get('name'))}: hours + {lcu} NLCU (assumed) + {reach}"
    return [Line(r["urn"], "Network Load Balancer", what, hours + addresses)]


def _load_balancer_service(r: dict[str, Any], ctx: Context) -> list[Line]:
    """A LoadBalancer Service: the AWS Load Balancer Controller makes an NLB for it."""
    spec = dig(r, "inputs", "spec", default={})
    if spec.get("type") != "LoadBalancer":
        return []
    annotations = dig(r, "inputs", "metadata", "annotations", default={}) or {}
    return _network_load_balancer(r, ctx, annotations, spec.get("loadBalancerClass"))


def _envoy_proxy(r: dict[str, Any], ctx: Context) -> list[Line]:
    """An EnvoyProxy whose Service is a LoadBalancer (Envoy Gateway's default) gets an NLB per
    Gateway using it: one is assumed."""
    service = dig(r, "inputs", "spec", "provider", "kubernetes", "envoyService", default={}) or {}
    if service.get("type", "LoadBalancer") != "LoadBalancer":
        return []
    annotations = service.get("annotations") or {}
    return _network_load_balancer(r, ctx, annotations, service.get("loadBalancerClass"))


def _claim_volume_type(claim: dict[str, Any], ctx: Context) -> str:
    wanted = dig(claim, "inputs", "spec", "storageClassName")
    classes = ctx.plan.of_type(STORAGE_CLASS)
    default = "storageclass.kubernetes.io/is-default-class"
    found = [
        c
        for c in classes
        if dig(c, "inputs", "metadata", "name") == wanted
        or (wanted is None and dig(c, "inputs", "metadata", "annotations", default) == "true")
    ]
    if not found:
        return "gp3"  # the EBS CSI driver's default type
    provisioner = str(dig(found[0], "inputs", "provisioner"))
    fallback = EBS_PROVISIONERS.get(provisioner, "gp3")
    return str(dig(found[0], "inputs", "parameters", "type") or fallback)


def _volume_claim(r: dict[str, Any], ctx: Context) -> list[Line]:
    size = gib(dig(r, "inputs", "spec", "resources", "requests", "storage"))
    if size is None:
        return ctx.estimate.not_priced(r, f"{name(r.get('name'))}: no storage request")
    kind = _claim_volume_type(r, ctx)
    return ctx.volume_line(r, "", f"{name(r.get('name'))}: {size:g} GiB {kind}", size, 1, kind)


def _ebs_volume(r: dict[str, Any], ctx: Context) -> list[Line]:
    size = gib(dig(r, "inputs", "size"))
    if size is None:
        return ctx.estimate.not_priced(r, f"{name(r.get('name'))}: no size")
    kind = str(dig(r, "inputs", "type") or "gp3")
    return ctx.volume_line(r, "", f"{name(r.get('name'))}: {size:g} GiB {kind}", size, 1, kind)


def _logs(ctx: Context, gb: float, retention_days: Any) -> float:
    """Ingestion plus steady-state storage of `gb` a month kept `retention_days` (0: forever,
    counted as a year)."""
    months = min(number(retention_days, 0) / 30, 12) or 12
    ingested = ctx.prices.price("cloudwatch", "logs_ingested_gb") * gb
    return ingested + ctx.prices.price("cloudwatch", "logs_stored_gb_month") * gb * months


def _database(r: dict[str, Any], ctx: Context) -> list[Line]:
    inputs = r.get("inputs", {})
    table = ctx.prices.regional["rds"]
    instance_class = str(inputs.get("instanceClass"))
    storage_type = str(inputs.get("storageType") or "gp2")  # RDS's default
    hourly = table["instance_hour"].get(instance_class)
    storage = table["storage_gb_month"].get(storage_type)
    if hourly is None or storage is None:
        return ctx.estimate.not_priced(r, f"{name(instance_class)} with {name(storage_type)}")
    copies = table["multi_az_factor"] if inputs.get("multiAz") else 1
    layout = "Multi-AZ" if copies > 1 else "single-AZ"
    size = number(inputs.get("allocatedStorage"), 0)
    lines = [
        Line(
            f"{r['urn']}#instance",
            "RDS instance",
            f"{name(r.get('name'))}: {name(instance_class)} {layout}",
            hourly * copies * ctx.prices.hours,
        ),
        Line(
            f"{r['urn']}#storage",
            "RDS storage",
            f"{name(r.get('name'))}: {size:g} GB {name(storage_type)} {layout}",
            storage * size * copies,
        ),
    ]
    # Exports whose log group the stack owns are priced with that group (_log_group).
    owned = {dig(g, "inputs", "name") for g in ctx.plan.of_type(LOG_GROUP)}
    exports = [
        export
        for export in inputs.get("enabledCloudwatchLogsExports") or []
        if f"{RDS_LOG_GROUPS}{inputs.get('identifier')}/{export}" not in owned
    ]
    if exports:
        gb = ctx.prices.assume("rds_log_export_gb_per_month")
        what = f"{name(r.get('name'))}: {len(exports)} log exports x {gb} GB/month (assumed)"
        what += ", kept forever"
        lines.append(
            Line(f"{r['urn']}#logs", "CloudWatch logs", what, len(exports) * _logs(ctx, gb, 0))
        )
    return lines


def _log_group(r: dict[str, Any], ctx: Context) -> list[Line]:
    exported = str(dig(r, "inputs", "name") or "").startswith(RDS_LOG_GROUPS)
    gb = ctx.prices.assume("rds_log_export_gb_per_month" if exported else "log_group_gb_per_month")
    days = dig(r, "inputs", "retentionInDays")
    kept = f"kept {number(days, 0):g} days" if number(days, 0) else "kept forever"
    what = f"{name(r.get('name'))}: {gb} GB/month ingested (assumed), {kept}"
    return [Line(r["urn"], "CloudWatch logs", what, _logs(ctx, gb, days))]


def _alarm(r: dict[str, Any], ctx: Context) -> list[Line]:
    monthly = ctx.prices.price("cloudwatch", "alarm_month")
    return [Line(r["urn"], "CloudWatch alarm", name(r.get("name")), monthly)]


def _kms_key(r: dict[str, Any], ctx: Context) -> list[Line]:
    what = f"{name(r.get('name'))}: one customer managed key"
    return [Line(r["urn"], "KMS key", what, ctx.prices.price("kms", "key_month"))]


def _queue(r: dict[str, Any], ctx: Context) -> list[Line]:
    millions = ctx.prices.assume("sqs_million_requests_per_month")
    what = f"{name(r.get('name'))}: {millions} million requests/month (assumed)"
    return [
        Line(r["urn"], "SQS queue", what, ctx.prices.price("sqs", "million_requests") * millions)
    ]


def _repository(r: dict[str, Any], ctx: Context) -> list[Line]:
    gb = ctx.prices.assume("ecr_gb_per_repository")
    what = f"{name(r.get('name'))}: {gb} GB of images (assumed)"
    return [
        Line(r["urn"], "ECR repository", what, ctx.prices.price("ecr", "storage_gb_month") * gb)
    ]


PRICERS: dict[str, Pricer] = {
    "eks:index:Cluster": _control_plane,
    "aws:eks/cluster:Cluster": _control_plane,
    "eks:index:ManagedNodeGroup": _node_group,
    "aws:eks/nodeGroup:NodeGroup": _node_group,
    NODE_POOL: _node_pool,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/eip:Eip": _elastic_ip,
    "aws:ec2/instance:Instance": _instance,
    "kubernetes:core/v1:Service": _load_balancer_service,
    "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy": _envoy_proxy,
    "kubernetes:core/v1:PersistentVolumeClaim": _volume_claim,
    "aws:ebs/volume:Volume": _ebs_volume,
    "aws:rds/instance:Instance": _database,
    LOG_GROUP: _log_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:kms/key:Key": _kms_key,
    "aws:sqs/queue:Queue": _queue,
    "aws:ecr/repository:Repository": _repository,
}


def is_free(type_: str) -> bool:
    return type_ not in PRICERS and (type_ in FREE_TYPES or type_.startswith(FREE_PREFIXES))


def estimate(plan: dict[str, Any], region: str | None = None) -> Estimate:
    """Price every resource of a JSON plan; `region` is used when the plan names none."""
    region = region_of(plan) or region
    if not region:
        raise prices.PriceError("the plan names no region: pass --region")
    table = prices.for_region(region)
    result = Estimate(str(plan.get("stack", "?")), region, table.as_of)
    ctx = Context(Plan(plan), table, result)
    for resource in ctx.plan.resources:
        type_ = str(resource.get("type", ""))
        if type_ in PRICERS:
            result.lines += PRICERS[type_](resource, ctx)
        elif not is_free(type_):
            result.not_priced(resource, "a billable type this tool has no price for")
    # In cents, so the total is the sum of the lines shown; ordered by kind, then by URN, as the
    # order of a plan's resources changes from one run to the next.
    result.lines = sorted(
        (replace(line, monthly=round(line.monthly, 2)) for line in result.lines),
        key=lambda line: (ORDER.index(line.resource), line.key),
    )
    result.ceilings = sorted(
        (replace(line, monthly=round(line.monthly, 2)) for line in result.ceilings),
        key=lambda line: line.key,
    )
    return result


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def usd(value: float) -> str:
    return f"${value:,.2f}"


def change(value: float) -> str:
    if round(value, 2) == 0:
        return "$0.00"
    return f"{'+' if value > 0 else '-'}{usd(abs(value))}"


def spot_note(result: Estimate, base: Estimate | None = None) -> str:
    share = result.spot_share
    if share is None:
        return "Spot share of node vCPU: no nodes in this plan."
    verdict = "meets" if share >= SPOT_TARGET else "**below**"
    was = base.spot_share if base else None
    before = f"{was:.0%} → " if was is not None else ""
    return (
        f"Spot share of node vCPU: {before}**{share:.0%}** "
        f"({result.spot_vcpu:g} of {result.node_vcpu:g} vCPU: node groups at desired size, "
        f"NodePools at expected), {verdict} the "
        f"≥ {SPOT_TARGET:.0%} target."
    )


def unpriced_note(result: Estimate) -> list[str]:
    if not result.unpriced:
        return []
    listed = "; ".join(
        f"{plandiff.code(type_)} ({', '.join(sorted(set(reasons)))})"
        for type_, reasons in sorted(result.unpriced.items())
    )
    return [f"- :warning: Not priced (billable, left out of the total): {listed}."]


def assumptions_note(table: prices.Prices) -> str:
    spot = table.assume("spot_savings")
    sources = prices.sources()
    return (
        f"- Prices: `tools/app_platform_tools/prices/aws.json` ({table.region}, table of "
        f"{table.as_of}; EC2 on-demand from karpenter-provider-aws's snapshot of "
        f"{sources['ec2']['as_of']}); spot at each type's Spot Advisor savings of "
        f"{sources['spot']['as_of']}, {spot:.0%} off where the Advisor lists none; "
        f"{table.assume('hours_per_month')} h/month. Usage assumed: "
        f"{table.assume('nat_gb_per_month')} GB/month per NAT, "
        f"{table.assume('log_group_gb_per_month')} GB/month per log group, "
        f"{table.assume('nlb_lcu')} NLCU per NLB, {table.assume('ecr_gb_per_repository')} GB "
        f"per ECR repository; traffic to the internet is not included."
    )


def render(result: Estimate) -> str:
    lines = [
        f"Estimated monthly cost of stack {plandiff.code(result.stack)} in {result.region}: "
        f"**{usd(result.total)}**",
        "",
        "| Resource | What | Monthly |",
        "|---|---|---:|",
        *(f"| {line.resource} | {line.what} | {usd(line.monthly)} |" for line in result.lines),
        f"| **Total** | | **{usd(result.total)}** |",
        "",
    ]
    if result.ceilings:
        lines += ["At most, every NodePool at its CPU limit (instead of its expected line):", ""]
        lines += [f"- {line.what}: {usd(line.monthly)}" for line in result.ceilings]
        lines.append("")
    lines += [f"- {spot_note(result)}", *unpriced_note(result)]
    lines.append(assumptions_note(prices.for_region(result.region)))
    return "\n".join(lines) + "\n"


def render_diff(base: Estimate, head: Estimate) -> str:
    """The lines whose cost changes between two estimates, and the totals."""
    before = {line.key: line for line in base.lines}
    after = {line.key: line for line in head.lines}
    rows = []
    for key in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(key), after.get(key)
        was, now = (old.monthly if old else 0.0), (new.monthly if new else 0.0)
        if round(was, 2) == round(now, 2) and (old and new and old.what == new.what):
            continue
        shown = new or old
        what = (
            shown.what if not (old and new) or old.what == new.what else f"{old.what} → {new.what}"
        )
        rows.append(
            f"| {shown.resource} | {what} | {usd(was) if old else '—'} | "
            f"{usd(now) if new else '—'} | {change(now - was)} |"
        )
    total = head.total - base.total
    lines = [
        f"Monthly cost estimate: {usd(base.total)} → **{usd(head.total)}** ({change(total)})",
        "",
    ]
    if rows:
        lines += ["| Resource | What | Base | Head | Change |", "|---|---|---:|---:|---:|", *rows]
        lines += [
            f"| **Total** | | {usd(base.total)} | {usd(head.total)} | **{change(total)}** |",
            "",
        ]
    else:
        lines += ["No priced line changes.", ""]
    lines += [f"- {spot_note(head, base)}", *unpriced_note(head)]
    lines.append(assumptions_note(prices.for_region(head.region)))
    return "\n".join(lines) + "\n"


def estimates(base: dict[str, Any], head: dict[str, Any], region: str | None = None):
    """Both plans priced; a base plan without a region (an empty or older plan) takes head's."""
    head_estimate = estimate(head, region)
    return estimate(base, region_of(base) or head_estimate.region), head_estimate


def comment_section(base: dict[str, Any], head: dict[str, Any]) -> str:
    """The pull-request comment's cost section; a plan that cannot be priced says why."""
    try:
        text = render_diff(*estimates(base, head))
    except prices.PriceError as why:
        text = f"Not estimated: {plandiff.code(str(why))}\n"
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as why:
        # A plan from a fork is data of any shape: say so rather than lose the whole comment.
        text = f"Not estimated: a plan could not be read ({plandiff.code(type(why).__name__)})\n"
    return f"#### Monthly cost\n\n{text}"


# ---------------------------------------------------------------------------------------------
# The README's table, planning a stack, the command line
# ---------------------------------------------------------------------------------------------


def with_readme_table(readme: str, table: str) -> str:
    """`readme` with the text between the cost table's markers replaced by `table`."""
    start, end = readme.index(README_START), readme.index(README_END)
    return f"{readme[: start + len(README_START)]}\n{table}{readme[end:]}"


def readme_drift(readme: Path, table: str) -> list[str]:
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return [f"{readme}: no cost table markers ({README_START})"]
    if with_readme_table(text, table) != text:
        return [
            f"{readme}: the cost table differs from the dev stack's estimate (cost --write-readme)"
        ]
    return []


def stack_plan(project: Path, stack: str) -> dict[str, Any]:
    """The offline plan of a stack as JSON data, as `plan --json` writes it."""
    from app_platform_tools import offline, plan  # the Pulumi SDK: only when planning

    stand_ins = offline.offline_stand_ins()
    recording = offline.run(project, stack, stand_ins=stand_ins)
    return plan.to_json(recording, stand_ins.used, region=plan.stack_region(project, stack))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plans", nargs="*", type=Path, help="JSON plan, or BASE and HEAD plans")
    parser.add_argument("--stack", default="dev", help="stack to plan offline (no plan given)")
    parser.add_argument("--project", default=Path("."), type=Path, help="folder of Pulumi.yaml")
    parser.add_argument("--base", type=Path, help="JSON plan to compare the stack's plan with")
    parser.add_argument("--region", help="region of a plan that names none")
    readme = parser.add_mutually_exclusive_group()
    readme.add_argument("--write-readme", action="store_true", help="rewrite README's table")
    readme.add_argument("--check-readme", action="store_true", help="fail if README's differs")
    args = parser.parse_args(argv)
    if len(args.plans) > 2 or (args.base and len(args.plans) > 1):
        parser.error("give at most one plan with --base, or BASE and HEAD")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        loaded = [plandiff.load(path) for path in ([args.base] if args.base else []) + args.plans]
        if len(loaded) < (2 if args.base else 1):
            loaded.append(stack_plan(args.project, args.stack))
        if len(loaded) == 2:
            sys.stdout.write(render_diff(*estimates(*loaded, region=args.region)))
            return 0
        table = render(estimate(loaded[0], args.region))
    except (plandiff.PlanError, prices.PriceError) as why:
        print(f"cost: {why}", file=sys.stderr)
        return 2
    readme = args.project / "README.md"
    if args.write_readme:
        readme.write_text(with_readme_table(readme.read_text(), table))
        print(f"Wrote the cost table of stack {args.stack} into {readme}")
    elif args.check_readme:
        problems = readme_drift(readme, table)
        print("\n".join(problems) or f"{readme}: the cost table is up to date")
        return 1 if problems else 0
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
