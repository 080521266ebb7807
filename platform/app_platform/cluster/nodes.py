"""The nodes: their IAM role, the system and spot node groups, and the system pool's label."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from app_platform.cluster.iam import service_trust_policy
from app_platform.instance_types import AMD64, ARM64, one_architecture
from app_platform.network import KARPENTER_DISCOVERY_TAG

if TYPE_CHECKING:
    from app_platform.cluster.component import ClusterArgs
    from app_platform.cluster.options import NodeGroupOptions

# The EKS-optimized AL2023 image of each architecture (instance_types.architecture).
AMI_TYPES = {AMD64: "AL2023_x86_64_STANDARD", ARM64: "AL2023_ARM_64_STANDARD"}

NODE_MANAGED_POLICIES = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    # Shell access through SSM Session Manager instead of SSH keys and open ports.
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
]

# A pod is one network hop further than its node: a hop limit of 1 keeps pods (outside the host
# network) from reaching the instance metadata service and borrowing the node's IAM role. What
# the add-ons would read from it is given to them instead: the EBS CSI driver's region and
# metadata source (`ebs_csi_configuration`), the Load Balancer Controller's region and VPC
# (edge/controller.py), the Cluster Autoscaler's region (autoscaling.py). The VPC CNI,
# kube-proxy and the Pod Identity agent run on the host network, within the limit. Pods get AWS
# credentials from the Pod Identity agent or IRSA, not from instance metadata.
IMDS_HOP_LIMIT = 1

# The on-demand system nodes carry this label and taint; controllers that must not be
# interrupted by a spot reclaim select the label and tolerate the taint.
NODE_POOL_LABEL = "node-pool"
SYSTEM_POOL = "system"
SPOT_POOL = "spot"
SYSTEM_NODE_SELECTOR = {NODE_POOL_LABEL: SYSTEM_POOL}
SYSTEM_TOLERATIONS = [
    {"key": NODE_POOL_LABEL, "operator": "Equal", "value": SYSTEM_POOL, "effect": "NoSchedule"}
]
# The system nodes keep only what must not run on capacity that a spot reclaim or Karpenter can
# take away, so that one small on-demand node holds it (its pod slots are few: 17 on t4g.medium):
# Karpenter or the Cluster Autoscaler (never on nodes they manage), CoreDNS and the EBS CSI
# controller (cluster add-ons, cluster/addons.py), the Load Balancer Controller (its webhooks
# guard every Service, and it must outlive the load balancers on destroy), and Prometheus,
# Alertmanager and their operator (a zonal volume; the operator's webhook validates rules).
# Stateless add-ons (Argo CD, Grafana, Envoy Gateway's controller, metrics-server,
# kube-state-metrics) run on the workload nodes with the apps.
ON_SYSTEM_NODES = {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": SYSTEM_TOLERATIONS}
# What the cluster's own add-ons (CoreDNS, the EBS CSI controller, Karpenter) tolerate: the
# system taint, and the taint Kubernetes reserves for nodes kept to critical add-ons. Setting
# tolerations replaces an add-on's or chart's defaults, which include the second.
CRITICAL_ADDON_TOLERATIONS = [
    *SYSTEM_TOLERATIONS,
    {"key": "CriticalAddonsOnly", "operator": "Exists"},
]
CRITICAL_ADDONS_ON_SYSTEM_NODES = {
    "nodeSelector": SYSTEM_NODE_SELECTOR,
    "tolerations": CRITICAL_ADDON_TOLERATIONS,
}


def ami_type(instance_types: tuple[str, ...]) -> str:
    """The AMI type of a group of these instance types (validated to share one architecture)."""
    return AMI_TYPES[one_architecture(instance_types)]


def discovery_tag(cluster_name: str) -> tuple[str, str]:
    """The tag Karpenter selects this cluster's subnets and security groups by (the Network
    tags the private subnets with it)."""
    return KARPENTER_DISCOVERY_TAG, cluster_name


class Nodes:
    """The Cluster's node IAM role and managed node groups (a part of Cluster)."""

    def _node_role(
        self, name: str, child: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        """The nodes' role and its policy attachments, which node groups must depend on: a role
        without them cannot join the cluster, pull images or run the VPC CNI."""
        role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com", "sts:AssumeRole"),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy_arn.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=policy_arn,
                opts=child,
            )
            for policy_arn in NODE_MANAGED_POLICIES
        ]
        return role, attachments

    def _node_group(
        self,
        name: str,
        pool: str,
        capacity_type: str,
        sizes: NodeGroupOptions,
        args: ClusterArgs,
        role: aws.iam.Role,
        after: list[pulumi.Resource],
    ) -> eks.ManagedNodeGroup:
        # Our own launch template: IMDSv2 with hop limit 1 and an encrypted gp3 root volume.
        # EKS still writes the AL2023 node bootstrap into it because it names no AMI.
        template = aws.ec2.LaunchTemplate(
            f"{name}-{pool}",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=args.options.node_disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags={"Name": f"{args.cluster_name}-{pool}"}
                )
                for kind in ("instance", "volume")
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        is_system = pool == SYSTEM_POOL
        return eks.ManagedNodeGroup(
            f"{name}-{pool}",
            cluster=self.eks,
            node_group_name_prefix=f"{args.cluster_name}-{pool}-",
            version=args.options.kubernetes_version,
            capacity_type=capacity_type,
            instance_types=list(sizes.instance_types),
            ami_type=ami_type(sizes.instance_types),
            node_role_arn=role.arn,
            subnet_ids=args.private_subnet_ids,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=sizes.min_size, desired_size=sizes.desired_size, max_size=sizes.max_size
            ),
            # The Cluster Autoscaler owns the desired size once it runs; `up` must not reset it.
            ignore_scaling_changes=not is_system,
            labels={NODE_POOL_LABEL: pool},
            taints=[
                aws.eks.NodeGroupTaintArgs(
                    key=NODE_POOL_LABEL, value=SYSTEM_POOL, effect="NO_SCHEDULE"
                )
            ]
            if is_system
            else None,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
