"""Cluster: the EKS control plane, its nodes and the Kubernetes provider everything else uses.

One part a module: options, control_plane, nodes, addons (and block storage), iam (roles for
AWS services and service accounts); `Cluster` (component) puts them together.
"""

from app_platform.cluster.addons import ADDONS_BEFORE_NODES, EBS_CSI_ADDON
from app_platform.cluster.component import Cluster, ClusterArgs
from app_platform.cluster.iam import service_account_role
from app_platform.cluster.nodes import (
    AMI_TYPES,
    CRITICAL_ADDON_TOLERATIONS,
    CRITICAL_ADDONS_ON_SYSTEM_NODES,
    NODE_POOL_LABEL,
    ON_SYSTEM_NODES,
    SYSTEM_NODE_SELECTOR,
    SYSTEM_TOLERATIONS,
    ami_type,
)
from app_platform.cluster.options import (
    MIN_SPOT_INSTANCE_TYPES,
    SUPPORTED_KUBERNETES_VERSIONS,
    ClusterOptions,
    KubernetesVersion,
    NodeGroupOptions,
    SpotGroupOptions,
)

__all__ = [
    "ADDONS_BEFORE_NODES",
    "AMI_TYPES",
    "CRITICAL_ADDONS_ON_SYSTEM_NODES",
    "CRITICAL_ADDON_TOLERATIONS",
    "EBS_CSI_ADDON",
    "MIN_SPOT_INSTANCE_TYPES",
    "NODE_POOL_LABEL",
    "ON_SYSTEM_NODES",
    "SUPPORTED_KUBERNETES_VERSIONS",
    "SYSTEM_NODE_SELECTOR",
    "SYSTEM_TOLERATIONS",
    "Cluster",
    "ClusterArgs",
    "ClusterOptions",
    "KubernetesVersion",
    "NodeGroupOptions",
    "SpotGroupOptions",
    "ami_type",
    "service_account_role",
]
