"""Karpenter: the node provisioner of the workload nodes (nodeProvisioner: karpenter)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from app_platform import charts
from app_platform.cluster import CRITICAL_ADDONS_ON_SYSTEM_NODES
from app_platform.karpenter import node_class, node_pools
from app_platform.karpenter.iam import NAMESPACE, SERVICE_ACCOUNT, Identities
from app_platform.karpenter.interruption import Interruption
from app_platform.karpenter.options import KarpenterOptions
from app_platform.options import component_inputs

CRD_RELEASE = "karpenter-crd"
RELEASE = "karpenter"
# Two controllers (one leads, one stands by), never more than there are system nodes: the
# chart keeps them on different nodes (required pod anti-affinity on the hostname).
CONTROLLER_REPLICAS = 2
CONTROLLER_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"memory": "1Gi"},
}
# Deleting the NodePools and the EC2NodeClass waits for Karpenter to drain and terminate every
# node it launched (NodeClaim and EC2NodeClass finalizers), at most the pools'
# terminationGracePeriod; this leaves room for the instances to go, too.
DELETE_TIMEOUT = "20m"


@dataclass(frozen=True)
class KarpenterArgs:
    """The options, and what comes from the Cluster: its name (plain, for names, tags and
    policies; and as the cluster's output, so what needs the cluster waits for it), the system
    nodes the controller runs on, the root disk size of every node, and the resources to wait
    for (schedulable system nodes, the discovery tags on subnets and security group)."""

    options: KarpenterOptions
    cluster_name: str
    cluster_name_output: pulumi.Input[str]
    region: str
    provider: k8s.Provider
    system_node_count: int
    node_disk_size_gib: int
    nodes_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    discovery_tags: Sequence[pulumi.Resource] = field(default_factory=list)


class Karpenter(Identities, Interruption, pulumi.ComponentResource):
    """Owns Karpenter: its CRDs (the `karpenter-crd` chart) and controller (the `karpenter`
    chart) on the on-demand system nodes, the controller's Pod Identity role with the upstream
    policy, the nodes' own IAM role and EC2_LINUX access entry, the interruption queue with its
    EventBridge rules, one EC2NodeClass and the spot and on-demand fallback NodePools.

    Gives `architectures` (plain: the CPU architectures workload nodes may have) and
    `node_pools`.

    On destroy the NodePools go first, then the EC2NodeClass, while the controller, its
    permissions, the node role and the queue are still there: deleting a NodePool deletes its
    NodeClaims, whose finalizers have the controller drain each node and terminate its
    instance; the EC2NodeClass's finalizer waits for the last of them and removes the instance
    profile. The instances are not Pulumi resources; that is how they go.
    """

    # No class-level annotation of `architectures`: Pulumi would read it as the type of the
    # recorded input of the same name (a list).
    node_pools: list[k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "app-platform:karpenter:Karpenter",
            name,
            {
                **component_inputs(args.options),
                "cluster_name": args.cluster_name,
                "region": args.region,
                "system_node_count": args.system_node_count,
                "node_disk_size_gib": args.node_disk_size_gib,
            },
            opts,
        )
        self._args = args
        self.architectures: tuple[str, ...] = args.options.architectures
        node_role, node_access = self._node_role(name, args)
        queue, queue_wiring = self._interruption_queue(name, args)
        identity = self._controller_identity(name, args, node_role, queue.arn)
        crds, controller = self._releases(name, queue, [*identity, *queue_wiring])
        default_class = k8s.apiextensions.CustomResource(
            f"{name}-karpenter-node-class",
            api_version=node_class.API_VERSION,
            kind=node_class.KIND,
            metadata={"name": node_class.NODE_CLASS_NAME},
            spec=node_role.name.apply(self._node_class_spec),
            opts=self._opts(
                depends_on=[crds, controller, *node_access, *args.discovery_tags],
                custom_timeouts=pulumi.CustomTimeouts(delete=DELETE_TIMEOUT),
            ),
        )
        self.node_pools = [
            k8s.apiextensions.CustomResource(
                f"{name}-karpenter-{pool.name}",
                api_version=node_pools.API_VERSION,
                kind=node_pools.KIND,
                metadata=node_pools.node_pool_metadata(pool),
                spec=node_pools.node_pool_spec(pool, args.options, node_class.NODE_CLASS_NAME),
                opts=self._opts(
                    depends_on=[crds, controller, default_class],
                    custom_timeouts=pulumi.CustomTimeouts(delete=DELETE_TIMEOUT),
                ),
            )
            for pool in node_pools.pools(args.options)
        ]
        self.register_outputs({})

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **kwargs)

    def _releases(
        self, name: str, queue: aws.sqs.Queue, permissions: list[pulumi.Resource]
    ) -> tuple[k8s.helm.v3.Release, k8s.helm.v3.Release]:
        """The CRDs and the controller. Helm installs a chart's crds/ once and never upgrades
        them, so the CRDs come from the karpenter-crd chart (as templates: upgraded with every
        bump of the pin) and the controller's chart skips its own copy."""
        ready = list(self._args.nodes_ready)
        crds = charts.release(
            f"{name}-karpenter-crd",
            charts.KARPENTER_CRD,
            release_name=CRD_RELEASE,
            namespace=NAMESPACE,
            values={},
            opts=self._opts(depends_on=ready),
        )
        controller = charts.release(
            f"{name}-karpenter",
            charts.KARPENTER,
            release_name=RELEASE,
            namespace=NAMESPACE,
            values=queue.name.apply(self.controller_values),
            skip_crds=True,
            opts=self._opts(depends_on=[crds, *permissions, *ready]),
        )
        return crds, controller

    def _node_class_spec(self, node_role_name: str) -> dict[str, Any]:
        args = self._args
        return node_class.node_class_spec(
            cluster_name=args.cluster_name,
            node_role_name=node_role_name,
            ami_version=args.options.ami_version,
            disk_size_gib=args.node_disk_size_gib,
        )

    def controller_values(self, queue_name: str) -> dict[str, Any]:
        args = self._args
        return {
            "replicas": min(CONTROLLER_REPLICAS, args.system_node_count),
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            **CRITICAL_ADDONS_ON_SYSTEM_NODES,
            # DNS from the VPC resolver, as on the node: the controller reaches AWS and the API
            # server without CoreDNS, so it starts (and launches nodes) whatever CoreDNS does.
            "dnsPolicy": "Default",
            "controller": {
                # The region from the environment: with IMDS_HOP_LIMIT the controller's pod
                # cannot ask instance metadata for it (pkg/operator/operator.go).
                "env": [{"name": "AWS_REGION", "value": args.region}],
                "resources": CONTROLLER_RESOURCES,
            },
            "settings": {
                "clusterName": args.cluster_name,
                # The endpoint and CA from DescribeCluster (the policy allows it for this
                # cluster only).
                "eksControlPlane": True,
                "interruptionQueue": queue_name,
            },
        }
