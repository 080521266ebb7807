"""Cluster: the EKS control plane, its nodes and the Kubernetes provider everything else uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from app_platform.cluster.addons import ADDONS_AFTER_NODES, ADDONS_BEFORE_NODES, Addons
from app_platform.cluster.control_plane import ControlPlane
from app_platform.cluster.nodes import SPOT_POOL, SYSTEM_POOL, Nodes, discovery_tag
from app_platform.cluster.options import ClusterOptions
from app_platform.options import component_inputs


@dataclass(frozen=True)
class ClusterArgs:
    """The options, and what comes from elsewhere: the cluster's name (every AWS name starts
    with it), the region, and the network it runs in."""

    options: ClusterOptions
    cluster_name: str
    region: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[list[str]]
    private_subnet_ids: pulumi.Input[list[str]]
    # The private subnets' path to the internet (Network.egress_ready): the control plane and
    # the nodes wait for it, so on destroy everything in the cluster goes while it still works.
    egress_ready: Sequence[pulumi.Resource] = field(default_factory=list)


class Cluster(ControlPlane, Nodes, Addons, pulumi.ComponentResource):
    """Owns the EKS control plane (API authentication with access entries, OIDC provider,
    control-plane logs, secrets encrypted with a rotating KMS key), the node IAM role, a managed
    node group on spot capacity and a small on-demand system node group, the EKS managed add-ons,
    the EBS CSI driver with a default gp3 StorageClass, and a Kubernetes provider for the cluster.

    Gives `provider`, `cluster_name`, `kubeconfig` (secret), `oidc_provider_arn`, `oidc_issuer`,
    `node_security_group_id`, `spot_node_group_name`, and `nodes_ready`: resources to depend on
    when something needs schedulable nodes and cluster DNS; `block_storage` for workloads with
    persistent volumes (volumes.py). With `nodeProvisioner: karpenter` there is no spot node
    group, and `discovery_tags` mark the nodes' security group for Karpenter's EC2NodeClass.
    """

    provider: k8s.Provider
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    nodes_ready: list[pulumi.Resource]
    discovery_tags: list[pulumi.Resource]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "app-platform:cluster:Cluster",
            name,
            {
                **component_inputs(args.options),
                "cluster_name": args.cluster_name,
                "region": args.region,
            },
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)

        self.eks = self._control_plane(name, args, child)
        # The EKS cluster's own name output, not the name asked for: whatever uses it waits
        # for the cluster to exist.
        self.cluster_name = self.eks.eks_cluster.name

        before_nodes = [self._addon(name, addon, args, []) for addon in ADDONS_BEFORE_NODES]
        node_role, node_policies = self._node_role(name, child)
        # Nodes start after, and are deleted before, their permissions, the add-ons they need
        # to become Ready and the egress they pull images and join the cluster through.
        after = [*before_nodes, *node_policies, *args.egress_ready]
        self.system_node_group = self._node_group(
            name, SYSTEM_POOL, "ON_DEMAND", args.options.system, args, node_role, after
        )
        node_groups: list[pulumi.Resource] = [self.system_node_group]
        # With Karpenter the workload nodes are its NodePools' (karpenter/), not a node group.
        self.spot_node_group = None
        if not args.options.uses_karpenter:
            self.spot_node_group = self._node_group(
                name, SPOT_POOL, "SPOT", args.options.spot, args, node_role, after
            )
            node_groups.append(self.spot_node_group)
        after_nodes = [self._addon(name, addon, args, node_groups) for addon in ADDONS_AFTER_NODES]
        self.nodes_ready = [*node_groups, *after_nodes]

        self.kubeconfig = pulumi.Output.secret(self.eks.kubeconfig_json)
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True, opts=child
        )
        self.block_storage = self._block_storage(name, args, node_groups)
        self.oidc_provider_arn = self.eks.oidc_provider_arn
        self.oidc_issuer = self.eks.oidc_issuer
        self.node_security_group_id = self.eks.node_security_group_id
        self.discovery_tags = self._discovery_tag(name, args)
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
                "node_security_group_id": self.node_security_group_id,
            }
        )

    def _discovery_tag(self, name: str, args: ClusterArgs) -> list[pulumi.Resource]:
        """Karpenter finds the security group of its nodes by tag. It is the one the managed
        nodes have: our launch templates name none, so EKS gives them the cluster security
        group it creates (which pulumi-eks reports as the node security group when it makes no
        groups of its own). EKS owns that group; only the tag is ours."""
        if not args.options.uses_karpenter:
            return []
        key, value = discovery_tag(args.cluster_name)
        return [
            aws.ec2.Tag(
                f"{name}-node-sg-discovery",
                resource_id=self.eks.cluster_security_group_id,
                key=key,
                value=value,
                opts=pulumi.ResourceOptions(parent=self),
            )
        ]
