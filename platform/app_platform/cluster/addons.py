"""EKS managed add-ons, and block storage: the EBS CSI driver and the default gp3 class."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from app_platform.cluster.iam import service_trust_policy
from app_platform.cluster.nodes import CRITICAL_ADDONS_ON_SYSTEM_NODES
from app_platform.volumes import BlockStorage

if TYPE_CHECKING:
    from app_platform.cluster.component import ClusterArgs

# Add-ons the nodes need before they can become Ready, and those that need Ready nodes to run.
ADDONS_BEFORE_NODES = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"]
ADDONS_AFTER_NODES = ["coredns"]
ADDON_CONFIGURATION = {
    # The VPC CNI enforces NetworkPolicies only when told to (its network policy agent is off
    # by default); without it every app's NetworkPolicy would be silently ignored.
    "vpc-cni": {"enableNetworkPolicy": "true"},
    # CoreDNS's default tolerations do not include the system taint. With Karpenter the system
    # nodes are the only nodes when CoreDNS is created: its pods would stay Pending, the add-on
    # DEGRADED, and its create would time out with Karpenter (which waits for it) never
    # started. On the system nodes, cluster DNS also survives spot reclaims and consolidation.
    "coredns": CRITICAL_ADDONS_ON_SYSTEM_NODES,
}
# EBS volumes (Prometheus) go through the CSI driver; its controller gets its AWS permissions
# through EKS Pod Identity (the agent add-on runs before nodes).
EBS_CSI_ADDON = "aws-ebs-csi-driver"
# The driver's only metadata source its node pods can reach with IMDS_HOP_LIMIT: their Node
# object (provider ID, instance type and zone labels).
EBS_CSI_NODE_METADATA_SOURCES = "kubernetes"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
# EKS has no gp3 class (and since 1.30 no default class); this one becomes the default.
GP3_STORAGE_CLASS = "gp3"


def ebs_csi_configuration(region: str, cluster_name: str) -> dict:
    """The EBS CSI driver add-on's configuration: keys of the driver's Helm chart values, which
    the add-on's configuration schema follows (checked in tests/upstream).

    - `controller.region`: with AWS_REGION set, the controller reads no instance metadata at
      all (cmd/main.go); without it, it would try IMDS, which IMDS_HOP_LIMIT puts out of reach.
    - `node.metadataSources`: the node plugin needs its instance ID, type and zone; it reads them
      from its Node object instead of trying IMDS first and waiting for it to time out
      (docs/install.md "Metadata"). It then counts one ENI and the root volume as attached
      when working out how many volumes fit on a node.
    - `controller.k8sTagClusterId` and `extraCreateMetadata`: every volume it creates is tagged
      with the cluster and its claim's namespace and name, which is how destroy finds the
      volumes of the stack's claims (volumes.VolumeCleanup).
    - `controller.nodeSelector` and `tolerations`: the controller runs on the system nodes.
      The chart's tolerations do not include the system taint; with Karpenter there is no
      other node when the add-on is created, and a controller on a Karpenter node could be
      evicted, by consolidation or by a NodePool's deletion, while volumes are attached.
    """
    return {
        "controller": {
            "region": region,
            "k8sTagClusterId": cluster_name,
            "extraCreateMetadata": True,
            **CRITICAL_ADDONS_ON_SYSTEM_NODES,
        },
        "node": {"metadataSources": EBS_CSI_NODE_METADATA_SOURCES},
    }


class Addons:
    """The Cluster's EKS managed add-ons and block storage (a part of Cluster)."""

    def _block_storage(
        self, name: str, args: ClusterArgs, node_groups: list[pulumi.Resource]
    ) -> BlockStorage:
        """The EBS CSI driver add-on (Pod Identity role) and a default, encrypted gp3 class."""
        role = aws.iam.Role(
            f"{name}-ebs-csi",
            # EKS Pod Identity also tags the session with the pod's namespace and account.
            assume_role_policy=service_trust_policy(
                "pods.eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=role.name,
            policy_arn=EBS_CSI_POLICY_ARN,
            opts=pulumi.ResourceOptions(parent=self),
        )
        driver = self._addon(
            name,
            EBS_CSI_ADDON,
            args,
            [*node_groups, attachment],
            pod_identity=[
                aws.eks.AddonPodIdentityAssociationArgs(
                    role_arn=role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT
                )
            ],
            configuration=ebs_csi_configuration(args.region, args.cluster_name),
        )
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={
                "name": GP3_STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            # Create the volume in the zone the pod is scheduled to, not a random one.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[driver]),
        )
        return BlockStorage(
            storage_class_name=GP3_STORAGE_CLASS,
            cluster_name=args.cluster_name,
            region=args.region,
            ready=[driver, storage_class],
        )

    def _addon(
        self,
        name: str,
        addon: str,
        args: ClusterArgs,
        after: list[pulumi.Resource],
        pod_identity: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
        configuration: dict | None = None,
    ) -> aws.eks.Addon:
        """An EKS managed add-on at the version EKS makes the default for this cluster version:
        it follows the cluster's version, and does not move with every new add-on release."""
        version = aws.eks.get_addon_version_output(
            addon_name=addon, kubernetes_version=args.options.kubernetes_version, most_recent=False
        )
        configuration = configuration or ADDON_CONFIGURATION.get(addon)
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=args.cluster_name,
            addon_name=addon,
            addon_version=version.version,
            configuration_values=json.dumps(configuration) if configuration else None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            pod_identity_associations=pod_identity,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.eks, *after]),
        )
