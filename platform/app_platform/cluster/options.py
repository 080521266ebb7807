"""Cluster options: the Kubernetes version, the node groups and who reaches the API."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from app_platform.instance_types import INSTANCE_TYPE_PATTERN, one_architecture
from app_platform.network import is_ipv4_network
from app_platform.options import Options, StringList, one_of, whole_number

# EKS versions in standard support that every pinned chart supports (Envoy Gateway 1.9 needs
# 1.33+). Standard support lasts 14 months from each version's EKS release; drop a version here
# when it leaves standard support, and add a new one once the charts list it.
SUPPORTED_KUBERNETES_VERSIONS = ("1.34", "1.35", "1.36")
DEFAULT_KUBERNETES_VERSION = "1.35"
DEFAULT_SPOT_INSTANCE_TYPES = ("m6i.large", "m6a.large", "m5.large", "m5a.large", "m7i.large")
DEFAULT_SPOT_SIZES = {"min_size": 2, "desired_size": 2, "max_size": 6}
MIN_SPOT_INSTANCE_TYPES = 3
MAX_NODES = 100
DEFAULT_SYSTEM_INSTANCE_TYPE = "t3.large"
DEFAULT_SYSTEM_NODE_COUNT = 2
MAX_SYSTEM_NODES = 10
DEFAULT_DISK_GIB = 40
MIN_DISK_GIB = 20
MAX_DISK_GIB = 1000
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
# Who adds workload nodes: Karpenter (no spot node group), or the spot managed node group
# scaled by the Cluster Autoscaler.
KARPENTER = "karpenter"
CLUSTER_AUTOSCALER = "clusterAutoscaler"
NODE_PROVISIONERS = (KARPENTER, CLUSTER_AUTOSCALER)


def _instance_types(types: tuple[str, ...]) -> tuple[str, ...]:
    """A group runs one AMI, so all its types share one architecture (instance_types.py)."""
    one_architecture(types)
    return types


class NodeGroupOptions(Options):
    """A managed node group: its instance types and how many nodes it keeps."""

    instance_types: Annotated[StringList, AfterValidator(_instance_types)] = Field(
        alias="instanceTypes", description="Instance types the group launches, of one architecture."
    )
    min_size: whole_number(0, MAX_NODES) = Field(alias="minSize", description="Fewest nodes.")
    desired_size: whole_number(0, MAX_NODES) = Field(
        alias="desiredSize",
        description="Nodes at creation; afterwards the Cluster Autoscaler sets it and `pulumi "
        "up` leaves it alone.",
    )
    max_size: whole_number(1, MAX_NODES) = Field(alias="maxSize", description="Most nodes.")

    @model_validator(mode="after")
    def _ordered(self) -> NodeGroupOptions:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError("expected min_size <= desired_size <= max_size")
        return self


def _spot_instance_types(types: tuple[str, ...]) -> tuple[str, ...]:
    """Spot capacity is diversified over several types of one size and one architecture."""
    if len(set(types)) < MIN_SPOT_INSTANCE_TYPES:
        raise ValueError(
            f"expected at least {MIN_SPOT_INSTANCE_TYPES} different instance types of one size"
        )
    parsed = [INSTANCE_TYPE_PATTERN.match(t) for t in types]
    if not all(parsed):
        raise ValueError("expected instance type names such as m6i.large")
    sizes = {m["size"] for m in parsed if m}
    if len(sizes) > 1:
        raise ValueError(f"expected instance types of one size, got sizes {sorted(sizes)}")
    # The group's AMI is built for one architecture: Graviton (m7g, c6gn, ...) or x86_64.
    one_architecture(types)
    return types


def _cidrs(cidrs: tuple[str, ...]) -> tuple[str, ...]:
    if not cidrs or not all(map(is_ipv4_network, cidrs)):
        raise ValueError(
            "expected a non-empty list of IPv4 CIDRs allowed to reach the public API endpoint, "
            'e.g. ["203.0.113.7/32"]'
        )
    return cidrs


def _role_arns(arns: tuple[str, ...]) -> tuple[str, ...]:
    bad = [arn for arn in arns if not ROLE_ARN_PATTERN.fullmatch(arn)]
    if bad:
        raise ValueError(f"expected IAM role ARNs (not: {bad})")
    return arns


def _instance_type(value: str) -> str:
    if not INSTANCE_TYPE_PATTERN.fullmatch(value):
        raise ValueError("expected an instance type such as t3.large")
    return value


KubernetesVersion = one_of(
    SUPPORTED_KUBERNETES_VERSIONS,
    f"one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)} (EKS standard support)",
)


class SpotGroupOptions(NodeGroupOptions):
    """A spot group: diversified over several instance types of one size and architecture."""

    instance_types: Annotated[StringList, AfterValidator(_spot_instance_types)] = Field(
        alias="instanceTypes",
        description=f"Instance types, at least {MIN_SPOT_INSTANCE_TYPES}, all of one size and "
        "of one architecture: x86_64 (m6i, m6a, ...) or Graviton arm64 (m7g, m6g, c7g, ...), "
        "often cheaper for the same size; every image run there must have an arm64 variant "
        "(apps the stack builds get one).",
    )


class ClusterOptions(Options):
    """The control plane's version and access, and the two node groups."""

    public_access_cidrs: Annotated[StringList, AfterValidator(_cidrs)] = Field(
        alias="publicAccessCidrs",
        description="CIDRs allowed to reach the cluster's public API endpoint (required; nodes "
        "use the private endpoint).",
    )
    kubernetes_version: KubernetesVersion = Field(
        DEFAULT_KUBERNETES_VERSION,
        alias="kubernetesVersion",
        description="EKS Kubernetes version; one in EKS standard support that every pinned "
        f"chart supports ({', '.join(SUPPORTED_KUBERNETES_VERSIONS[:-1])} or "
        f"{SUPPORTED_KUBERNETES_VERSIONS[-1]}).",
    )
    admin_role_arns: Annotated[StringList, AfterValidator(_role_arns)] = Field(
        (),
        alias="adminRoleArns",
        description="IAM role ARNs given cluster-admin through EKS access entries, besides the "
        "identity that creates the cluster (which EKS makes admin itself; the program refuses "
        "it here).",
    )
    spot: SpotGroupOptions = Field(
        SpotGroupOptions(instance_types=DEFAULT_SPOT_INSTANCE_TYPES, **DEFAULT_SPOT_SIZES),
        title="Spot",
        description="The spot node group the workloads run on.",
    )
    system_instance_type: Annotated[str, AfterValidator(_instance_type)] = Field(
        DEFAULT_SYSTEM_INSTANCE_TYPE,
        alias="systemInstanceType",
        description="Instance type of the on-demand system node group (controllers that must "
        "not be interrupted). A Graviton type gets arm64 nodes: t4g.large costs about 20% less "
        "than t3.large on demand, same vCPUs and memory.",
    )
    system_node_count: whole_number(1, MAX_SYSTEM_NODES) = Field(
        DEFAULT_SYSTEM_NODE_COUNT,
        alias="systemNodeCount",
        description="Nodes in the on-demand system node group.",
    )
    node_disk_size_gib: whole_number(MIN_DISK_GIB, MAX_DISK_GIB) = Field(
        DEFAULT_DISK_GIB,
        alias="nodeDiskSizeGib",
        description="Encrypted gp3 root volume size of every node, in GiB.",
    )
    node_provisioner: one_of(NODE_PROVISIONERS) = Field(
        KARPENTER,
        alias="nodeProvisioner",
        description="Who provisions the workload nodes: karpenter (spot and on-demand "
        "NodePools; the spot* keys are unused) or clusterAutoscaler (the spot managed node "
        "group of the spot* keys, scaled by the Cluster Autoscaler).",
    )

    @property
    def uses_karpenter(self) -> bool:
        return self.node_provisioner == KARPENTER

    @property
    def system(self) -> NodeGroupOptions:
        """The system group has a fixed size: nothing scales it."""
        count = self.system_node_count
        return NodeGroupOptions(
            instance_types=(self.system_instance_type,),
            min_size=count,
            desired_size=count,
            max_size=count,
        )
