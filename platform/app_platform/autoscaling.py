"""Autoscaling: metrics-server (for HPAs) and the Cluster Autoscaler (for the spot nodes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform import charts
from app_platform.cluster import (
    ON_SYSTEM_NODES,
    KubernetesVersion,
    service_account_role,
)
from app_platform.options import checked

NAMESPACE = "kube-system"
METRICS_SERVER_RELEASE = "metrics-server"
METRICS_SERVER_REPLICAS = 2
CLUSTER_AUTOSCALER_RELEASE = "cluster-autoscaler"
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
# Spot node groups of one size: balance them across zones, add the node that wastes least.
CLUSTER_AUTOSCALER_FLAGS = {
    "balance-similar-node-groups": True,
    "expander": "least-waste",
    "skip-nodes-with-local-storage": False,
}
AUTO_DISCOVERY_TAG = "k8s.io/cluster-autoscaler"


def cluster_autoscaler_policy(cluster_name: str) -> dict[str, Any]:
    """The least the Cluster Autoscaler needs with auto-discovery (its AWS README, "Full
    features" policy), with scaling and terminating narrowed to this cluster's node groups: EKS
    tags a managed node group's Auto Scaling group `k8s.io/cluster-autoscaler/<cluster>`."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                    "eks:DescribeNodegroup",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                "Resource": "*",
                "Condition": {
                    "Null": {f"aws:ResourceTag/{AUTO_DISCOVERY_TAG}/{cluster_name}": "false"}
                },
            },
        ],
    }


@dataclass(frozen=True)
class AutoscalingArgs:
    provider: k8s.Provider
    cluster_name: str
    kubernetes_version: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    nodes_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    # Off when Karpenter provisions the nodes: then only metrics-server is installed.
    cluster_autoscaler: bool = True

    def __post_init__(self) -> None:
        # The Cluster Autoscaler's image follows the cluster's minor: refuse what has none.
        checked("kubernetes_version", KubernetesVersion, self.kubernetes_version, "AutoscalingArgs")


class Autoscaling(pulumi.ComponentResource):
    """Owns metrics-server (resource metrics, so HorizontalPodAutoscalers work) and the Cluster
    Autoscaler (its image matching the cluster's minor, an IRSA role limited to this cluster's
    node groups, auto-discovery by tags) unless Karpenter provisions the nodes. Both run on the
    on-demand system nodes. The spot node group is the one that scales: the system group's
    minimum equals its maximum.

    Gives `metrics_ready`: resources to depend on before creating HPAs.
    """

    metrics_ready: list[pulumi.Resource]

    def __init__(
        self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        inputs = {
            "cluster_name": args.cluster_name,
            "kubernetes_version": args.kubernetes_version,
            "region": args.region,
            "cluster_autoscaler": args.cluster_autoscaler,
        }
        super().__init__("app-platform:autoscaling:Autoscaling", name, inputs, opts)
        self._args = args
        metrics_server = charts.release(
            f"{name}-metrics-server",
            charts.METRICS_SERVER,
            release_name=METRICS_SERVER_RELEASE,
            namespace=NAMESPACE,
            values=self.metrics_server_values(),
            opts=self._opts(depends_on=list(args.nodes_ready)),
        )
        self.metrics_ready: list[pulumi.Resource] = [metrics_server]
        if args.cluster_autoscaler:
            self._cluster_autoscaler(name)
        self.register_outputs({})

    def _cluster_autoscaler(self, name: str) -> None:
        args = self._args
        role, policy = service_account_role(
            f"{name}-cluster-autoscaler",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=NAMESPACE,
            service_account=CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
            policy=cluster_autoscaler_policy(args.cluster_name),
            parent=self,
        )
        charts.release(
            f"{name}-cluster-autoscaler",
            charts.CLUSTER_AUTOSCALER,
            release_name=CLUSTER_AUTOSCALER_RELEASE,
            namespace=NAMESPACE,
            values=role.arn.apply(self.cluster_autoscaler_values),
            opts=self._opts(depends_on=[policy, *args.nodes_ready]),
        )

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **kwargs)

    def metrics_server_values(self) -> dict[str, Any]:
        return {
            "replicas": METRICS_SERVER_REPLICAS,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        }

    def cluster_autoscaler_values(self, role_arn: str) -> dict[str, Any]:
        args = self._args
        return {
            "cloudProvider": "aws",
            "awsRegion": args.region,
            "autoDiscovery": {"clusterName": args.cluster_name},
            "image": {
                "repository": charts.CLUSTER_AUTOSCALER_IMAGE,
                "tag": charts.CLUSTER_AUTOSCALER_IMAGE_TAGS[args.kubernetes_version],
            },
            "rbac": {
                "serviceAccount": {
                    "create": True,
                    "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": role_arn},
                }
            },
            "extraArgs": CLUSTER_AUTOSCALER_FLAGS,
            **ON_SYSTEM_NODES,
        }
