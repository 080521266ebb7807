"""The EC2NodeClass: how every Karpenter node is launched (image, disk, metadata, network)."""

from __future__ import annotations

from typing import Any

from app_platform.cluster.nodes import IMDS_HOP_LIMIT
from app_platform.network import KARPENTER_DISCOVERY_TAG

API_VERSION = "karpenter.k8s.aws/v1"
KIND = "EC2NodeClass"
NODE_CLASS_NAME = "default"
AMI_ALIAS_FAMILY = "al2023"
ROOT_DEVICE = "/dev/xvda"


def node_class_spec(
    *,
    cluster_name: str,
    node_role_name: str,
    ami_version: str,
    disk_size_gib: int,
) -> dict[str, Any]:
    """AL2023 at `ami_version`, IMDSv2 only with the same hop limit as the managed nodes (pods
    cannot borrow the node's role), an encrypted gp3 root volume of the managed nodes' size, the
    private subnets and the managed nodes' security group found by the discovery tag."""
    discovery = [{"tags": {KARPENTER_DISCOVERY_TAG: cluster_name}}]
    return {
        "amiSelectorTerms": [{"alias": f"{AMI_ALIAS_FAMILY}@{ami_version}"}],
        # Karpenter makes (and on deletion removes) the instance profile of this role.
        "role": node_role_name,
        "subnetSelectorTerms": discovery,
        "securityGroupSelectorTerms": discovery,
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": IMDS_HOP_LIMIT,
        },
        "blockDeviceMappings": [
            {
                "deviceName": ROOT_DEVICE,
                "rootVolume": True,
                "ebs": {
                    "volumeSize": f"{disk_size_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "tags": {"Name": f"{cluster_name}-karpenter"},
    }
