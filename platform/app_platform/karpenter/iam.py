"""Karpenter's two identities: the role of the nodes it launches, and the controller's own.

The nodes get a role of their own rather than the managed node groups' one: EKS gives a managed
node group's role its access entry itself, and a second, EC2_LINUX entry for the same role
would conflict with it. The controller gets its AWS permissions through EKS Pod Identity (the
agent add-on runs before any node, cluster/addons.py), from the upstream controller policy kept
as data (controller-policy.json), scoped by tag to this cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from app_platform.cluster.iam import service_trust_policy
from app_platform.cluster.nodes import NODE_MANAGED_POLICIES

if TYPE_CHECKING:
    from app_platform.karpenter.component import KarpenterArgs

POLICY_FILE = Path(__file__).with_name("controller-policy.json")
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
NODE_ACCESS_ENTRY_TYPE = "EC2_LINUX"


def controller_policies(
    *,
    partition: str,
    region: str,
    account_id: str,
    cluster_name: str,
    node_role_arn: str,
    queue_arn: str,
) -> dict[str, dict[str, Any]]:
    """The upstream controller policy documents (by their upstream name), placeholders filled."""
    data = json.loads(POLICY_FILE.read_text())
    values = {
        "partition": partition,
        "region": region,
        "account_id": account_id,
        "cluster_name": cluster_name,
        "node_role_arn": node_role_arn,
        "queue_arn": queue_arn,
    }
    return {
        name: json.loads(Template(json.dumps(document)).substitute(values))
        for name, document in data["policies"].items()
    }


class Identities:
    """The Karpenter component's IAM roles, access entry and Pod Identity association (a part
    of Karpenter)."""

    def _node_role(
        self, name: str, args: KarpenterArgs
    ) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
        """The nodes' role, its policies and its access entry: what a node needs to join."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-karpenter-node",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com", "sts:AssumeRole"),
            opts=child,
        )
        attachments: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-karpenter-node-{policy_arn.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=policy_arn,
                opts=child,
            )
            for policy_arn in NODE_MANAGED_POLICIES
        ]
        access_entry = aws.eks.AccessEntry(
            f"{name}-karpenter-node",
            cluster_name=args.cluster_name_output,
            principal_arn=role.arn,
            type=NODE_ACCESS_ENTRY_TYPE,
            opts=child,
        )
        return role, [*attachments, access_entry]

    def _controller_identity(
        self, name: str, args: KarpenterArgs, node_role: aws.iam.Role, queue_arn: pulumi.Output
    ) -> list[pulumi.Resource]:
        """The controller's role (assumed through Pod Identity), its inline policies and the
        association; the release depends on all of them."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-karpenter-controller",
            # EKS Pod Identity also tags the session with the pod's namespace and account.
            assume_role_policy=service_trust_policy(
                "pods.eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"
            ),
            opts=child,
        )
        documents = pulumi.Output.all(
            partition=aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self)).partition,
            account_id=aws.get_caller_identity_output(
                opts=pulumi.InvokeOptions(parent=self)
            ).account_id,
            node_role_arn=node_role.arn,
            queue_arn=queue_arn,
        ).apply(
            lambda known: controller_policies(
                region=args.region, cluster_name=args.cluster_name, **known
            )
        )
        policies: list[pulumi.Resource] = [
            aws.iam.RolePolicy(
                f"{name}-karpenter-{policy_name}",
                role=role.id,
                policy=documents.apply(
                    lambda all_documents, key=policy_name: json.dumps(
                        all_documents[key], separators=(",", ":")
                    )
                ),
                opts=child,
            )
            for policy_name in json.loads(POLICY_FILE.read_text())["policies"]
        ]
        association = aws.eks.PodIdentityAssociation(
            f"{name}-karpenter-controller",
            cluster_name=args.cluster_name_output,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=role.arn,
            opts=child,
        )
        return [*policies, association]
