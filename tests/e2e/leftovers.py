"""What a destroyed e2e stack left behind in the AWS account.

Three ways to find it, because no single one sees everything:

- the Resource Groups Tagging API, for the stack's default tags (`aws:defaultTags`: `project`,
  `stack`), which Pulumi puts on everything the program creates. That API keeps listing a
  resource for a while after it is deleted, so its EC2, KMS and CloudWatch Logs hits are
  confirmed with those services before they count;
- the tags the cluster's controllers put on what they create themselves (volumes, load
  balancers, network interfaces), which never carry our default tags, looked up with EC2 and
  ELBv2 directly; any network interface still in the stack's VPC counts too;
- names: IAM roles, instance profiles and policies (the Tagging API does not list IAM roles)
  and CloudWatch log groups start with the stack's prefix, `<name>-<stack>`, which is also the
  cluster's name.

Some things outlive a clean destroy by design; they are reported as expected, not as failures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Tags the controllers set, as their source sets them (read at the tags named).
#
# aws-ebs-csi-driver v1.64.0, pkg/cloud/cloud.go: AwsEbsDriverTagKey = "<driver name>/cluster",
# value "true", on every volume the driver creates. It names no cluster, so alone it only
# counts for volumes created since the run started.
EBS_CSI_DRIVER_TAG = "ebs.csi.aws.com/cluster"
# aws-ebs-csi-driver v1.64.0, pkg/driver/constants.go: ResourceLifecycleTagPrefix + cluster id
# ("owned"), KubernetesClusterTag and ClusterNameTagKey; set only when the driver runs with
# --k8s-tag-cluster-id (controller.k8sTagClusterId).
EBS_CSI_CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
EBS_CSI_KUBERNETES_CLUSTER_TAG = "KubernetesCluster"
EBS_CSI_CLUSTER_NAME_TAG = "ebs.csi.aws.com/cluster-name"
# aws-load-balancer-controller v3.5.0, pkg/shared_constants/tag_keys.go: TagKeyK8sCluster, set
# to the cluster name on every load balancer, target group and security group it creates
# (pkg/deploy/tracking/provider.go, StackTags).
LBC_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
# amazon-vpc-cni-k8s v1.22.0, pkg/awsutils/awsutils.go: eniClusterTagKey, set to the cluster
# name on every network interface the CNI creates (buildENITags).
VPC_CNI_CLUSTER_TAG = "cluster.k8s.amazonaws.com/name"

# Why something may be left after a clean destroy.
KMS_PENDING_DELETION = "KMS deletes a key only after its waiting period (7 days here)"

ELBV2_TAGS_PER_CALL = 20  # DescribeTags takes at most 20 ARNs
EC2_IDS_PER_CALL = 100


@dataclass(frozen=True)
class Scope:
    """What belongs to one stack: its default tags, its prefix (= cluster name), its VPCs, and
    when the run started (for volumes whose tags name no cluster)."""

    stack_tags: dict[str, str]
    prefix: str
    vpc_ids: tuple[str, ...]
    since: datetime

    @property
    def cluster(self) -> str:
        return self.prefix


@dataclass(frozen=True)
class Leftover:
    kind: str  # <service>:<resource type>, as in ARNs: ec2:volume, kms:key, iam:role
    id: str  # an ARN, or the service's own id where the API gives no ARN
    found_by: str
    tags: dict[str, str] = field(default_factory=dict)
    # Why it is expected to linger after a clean destroy; empty for a real leftover.
    expected: str = ""


@dataclass(frozen=True)
class Clients:
    """boto3 clients of one region (IAM is global)."""

    tagging: Any
    ec2: Any
    elbv2: Any
    kms: Any
    logs: Any
    iam: Any

    @classmethod
    def of(cls, session: Any, region: str) -> Clients:
        def client(name: str) -> Any:
            return session.client(name, region_name=region)

        return cls(
            *(client(n) for n in ("resourcegroupstaggingapi", "ec2", "elbv2", "kms", "logs", "iam"))
        )


def find(clients: Clients, scope: Scope) -> list[Leftover]:
    """Everything of the stack still in the account, expected or not, each once."""
    found = [
        *confirmed(clients, tagged(clients.tagging, scope.stack_tags)),
        *volumes(clients.ec2, scope),
        *load_balancers(clients.elbv2, scope),
        *network_interfaces(clients.ec2, scope),
        *log_groups(clients.logs, scope),
        *iam_entities(clients.iam, scope),
    ]
    unique: dict[str, Leftover] = {}
    for leftover in found:
        unique.setdefault(_resource_id(leftover.id), leftover)
    return list(unique.values())


def unexpected(leftovers: Iterable[Leftover]) -> list[Leftover]:
    return [leftover for leftover in leftovers if not leftover.expected]


def report(leftovers: list[Leftover]) -> str:
    """A readable report: the real leftovers, then what is expected to linger."""
    real = unexpected(leftovers)
    expected = [leftover for leftover in leftovers if leftover.expected]
    lines = [f"Leftovers after destroy: {len(real) or 'none'}"]
    lines += [_line(leftover, f"found by {leftover.found_by}") for leftover in real]
    if expected:
        lines.append(f"Expected to linger, ignored: {len(expected)}")
        lines += [_line(leftover, leftover.expected) for leftover in expected]
    return "\n".join(lines)


def _line(leftover: Leftover, why: str) -> str:
    tags = ", ".join(f"{key}={value}" for key, value in sorted(leftover.tags.items()))
    return f"  {leftover.kind:<28} {leftover.id}  ({why}){f'  tags: {tags}' if tags else ''}"


# ---------------------------------------------------------------------------------------------
# The Tagging API, and confirming what it lists
# ---------------------------------------------------------------------------------------------


def tagged(tagging: Any, tags: dict[str, str]) -> list[Leftover]:
    """Resources carrying all of `tags`, as the Tagging API lists them (deleted ones included)."""
    filters = [{"Key": key, "Values": [value]} for key, value in sorted(tags.items())]
    return [
        Leftover(arn_kind(item["ResourceARN"]), item["ResourceARN"], "stack tags", _tags(item))
        for page in tagging.get_paginator("get_resources").paginate(TagFilters=filters)
        for item in page["ResourceTagMappingList"]
    ]


def confirmed(clients: Clients, candidates: list[Leftover]) -> list[Leftover]:
    """The candidates that still exist; KMS keys pending deletion marked as expected."""
    ec2_ids = [_resource_id(c.id) for c in candidates if c.kind.startswith("ec2:")]
    existing_ec2 = _existing_ec2(clients.ec2, ec2_ids)
    kept: list[Leftover] = []
    for candidate in candidates:
        if candidate.kind.startswith("ec2:"):
            if _resource_id(candidate.id) in existing_ec2:
                kept.append(candidate)
        elif candidate.kind == "kms:key":
            state = _key_state(clients.kms, candidate.id)
            if state == "PendingDeletion":
                kept.append(dataclasses.replace(candidate, expected=KMS_PENDING_DELETION))
            elif state is not None:
                kept.append(candidate)
        elif candidate.kind == "logs:log-group":
            if _log_group_exists(clients.logs, candidate.id.split(":log-group:", 1)[1]):
                kept.append(candidate)
        else:
            kept.append(candidate)
    return kept


def _existing_ec2(ec2: Any, ids: list[str]) -> set[str]:
    """Which of these EC2 ids still exist: EC2 lists tags only of resources that exist."""
    existing: set[str] = set()
    for batch in _chunks(ids, EC2_IDS_PER_CALL):
        pages = ec2.get_paginator("describe_tags").paginate(
            Filters=[{"Name": "resource-id", "Values": batch}]
        )
        existing |= {tag["ResourceId"] for page in pages for tag in page["Tags"]}
    return existing


def _key_state(kms: Any, key_arn: str) -> str | None:
    try:
        return kms.describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"]
    except kms.exceptions.NotFoundException:
        return None


def _log_group_exists(logs: Any, name: str) -> bool:
    pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
    return any(group["logGroupName"] == name for page in pages for group in page["logGroups"])


# ---------------------------------------------------------------------------------------------
# What the controllers create, by their own tags
# ---------------------------------------------------------------------------------------------


def volumes(ec2: Any, scope: Scope) -> list[Leftover]:
    """EBS volumes the CSI driver made for the cluster's claims."""
    cluster = scope.cluster
    queries = [
        ("tag-key", f"{EBS_CSI_CLUSTER_TAG_PREFIX}{cluster}"),
        (f"tag:{EBS_CSI_KUBERNETES_CLUSTER_TAG}", cluster),
        (f"tag:{EBS_CSI_CLUSTER_NAME_TAG}", cluster),
        (f"tag:{EBS_CSI_DRIVER_TAG}", "true"),
    ]
    found: list[Leftover] = []
    for name, value in queries:
        pages = ec2.get_paginator("describe_volumes").paginate(
            Filters=[{"Name": name, "Values": [value]}]
        )
        for volume in (volume for page in pages for volume in page["Volumes"]):
            # The driver's own tag names no cluster: only volumes made during this run count.
            if name == f"tag:{EBS_CSI_DRIVER_TAG}" and volume["CreateTime"] < scope.since:
                continue
            by = f"tag {value}" if name == "tag-key" else f"tag {name[4:]}={value}"
            found.append(Leftover("ec2:volume", volume["VolumeId"], by, _tags(volume)))
    return found


def load_balancers(elbv2: Any, scope: Scope) -> list[Leftover]:
    """Load balancers of the cluster (the controller's tag), of the stack, or in its VPC."""
    balancers = [
        balancer
        for page in elbv2.get_paginator("describe_load_balancers").paginate()
        for balancer in page["LoadBalancers"]
    ]
    tags: dict[str, dict[str, str]] = {}
    for batch in _chunks([b["LoadBalancerArn"] for b in balancers], ELBV2_TAGS_PER_CALL):
        for description in elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]:
            tags[description["ResourceArn"]] = _tags(description)
    found: list[Leftover] = []
    for balancer in balancers:
        arn = balancer["LoadBalancerArn"]
        own = tags.get(arn, {})
        if own.get(LBC_CLUSTER_TAG) == scope.cluster:
            by = f"tag {LBC_CLUSTER_TAG}={scope.cluster}"
        elif scope.stack_tags.items() <= own.items():
            by = "stack tags"
        elif balancer.get("VpcId") in scope.vpc_ids:
            by = f"in the stack's VPC {balancer['VpcId']}"
        else:
            continue
        found.append(Leftover("elasticloadbalancing:loadbalancer", arn, by, own))
    return found


def network_interfaces(ec2: Any, scope: Scope) -> list[Leftover]:
    """Interfaces the VPC CNI made for the cluster, and any interface left in the stack's VPC
    (a load balancer's, the control plane's), which would keep the VPC from being deleted."""
    queries = [(f"tag:{VPC_CNI_CLUSTER_TAG}", [scope.cluster], f"tag {VPC_CNI_CLUSTER_TAG}")]
    if scope.vpc_ids:
        queries.append(("vpc-id", list(scope.vpc_ids), "in the stack's VPC"))
    found: list[Leftover] = []
    for name, values, by in queries:
        pages = ec2.get_paginator("describe_network_interfaces").paginate(
            Filters=[{"Name": name, "Values": values}]
        )
        for interface in (i for page in pages for i in page["NetworkInterfaces"]):
            tags = {tag["Key"]: tag["Value"] for tag in interface.get("TagSet", [])}
            described = f"{by}; {interface.get('Description') or 'no description'}"
            found.append(
                Leftover("ec2:network-interface", interface["NetworkInterfaceId"], described, tags)
            )
    return found


# ---------------------------------------------------------------------------------------------
# What is found by name
# ---------------------------------------------------------------------------------------------


def log_groups(logs: Any, scope: Scope) -> list[Leftover]:
    """The control plane's and the databases' log groups: the stack owns them all (it creates
    the databases' before RDS would), so every one must be gone."""
    prefixes = [f"/aws/eks/{scope.cluster}/", f"/aws/rds/instance/{scope.prefix}-"]
    found: list[Leftover] = []
    for prefix in prefixes:
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix)
        found += [
            Leftover("logs:log-group", _log_group_arn(group), f"name {prefix}*")
            for page in pages
            for group in page["logGroups"]
        ]
    return found


def iam_entities(iam: Any, scope: Scope) -> list[Leftover]:
    """IAM roles, instance profiles (the NAT instance's) and customer-managed policies named
    with the stack's prefix."""
    start = f"{scope.prefix}-"
    roles = (
        Leftover("iam:role", role["Arn"], f"name {start}*")
        for page in iam.get_paginator("list_roles").paginate()
        for role in page["Roles"]
        if role["RoleName"].startswith(start)
    )
    profiles = (
        Leftover("iam:instance-profile", profile["Arn"], f"name {start}*")
        for page in iam.get_paginator("list_instance_profiles").paginate()
        for profile in page["InstanceProfiles"]
        if profile["InstanceProfileName"].startswith(start)
    )
    policies = (
        Leftover("iam:policy", policy["Arn"], f"name {start}*")
        for page in iam.get_paginator("list_policies").paginate(Scope="Local")
        for policy in page["Policies"]
        if policy["PolicyName"].startswith(start)
    )
    return [*roles, *profiles, *policies]


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def arn_kind(arn: str) -> str:
    """`<service>:<resource type>` of an ARN: arn:aws:ec2:r:a:volume/vol-1 -> ec2:volume."""
    parts = arn.split(":", 5)
    service, resource = parts[2], parts[5]
    return f"{service}:{resource.split('/', 1)[0].split(':', 1)[0]}"


def _resource_id(id_or_arn: str) -> str:
    """An EC2 ARN's resource id (the direct queries give ids); anything else unchanged."""
    if id_or_arn.startswith("arn:") and arn_kind(id_or_arn).startswith("ec2:"):
        return id_or_arn.rsplit("/", 1)[-1]
    return id_or_arn


def _log_group_arn(group: dict[str, Any]) -> str:
    """The ARN the Tagging API gives too: `logGroupArn`, or `arn` without its `:*`."""
    return (
        group.get("logGroupArn") or group.get("arn", "").removesuffix(":*") or group["logGroupName"]
    )


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags") or []}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
