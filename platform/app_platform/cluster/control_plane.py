"""The EKS control plane: access entries, secrets encryption, control-plane logs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

if TYPE_CHECKING:
    from app_platform.cluster.component import ClusterArgs

CONTROL_PLANE_LOG_TYPES = ["api", "audit", "authenticator"]
# EKS would create the log group itself, kept forever and left behind by destroy; ours expires.
CONTROL_PLANE_LOG_RETENTION_DAYS = 90

CLUSTER_ADMIN_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

KMS_DELETION_WINDOW_DAYS = 7


class ControlPlane:
    """The Cluster's EKS control plane (a part of Cluster)."""

    def _control_plane(
        self, name: str, args: ClusterArgs, child: pulumi.ResourceOptions
    ) -> eks.Cluster:
        """The EKS control plane, its secrets key and its log group."""
        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Encrypts Kubernetes secrets of EKS cluster {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{args.cluster_name}-secrets",
            target_key_id=secrets_key.key_id,
            opts=child,
        )

        # The group EKS writes control-plane logs to, made first so it is ours: it expires old
        # logs and goes with the stack.
        control_plane_logs = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=CONTROL_PLANE_LOG_RETENTION_DAYS,
            opts=child,
        )
        return eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.options.kubernetes_version,
            vpc_id=args.vpc_id,
            public_subnet_ids=args.public_subnet_ids,
            private_subnet_ids=args.private_subnet_ids,
            node_associate_public_ip_address=False,
            endpoint_private_access=True,
            endpoint_public_access=True,
            public_access_cidrs=list(args.options.public_access_cidrs),
            # Access entries instead of the aws-auth ConfigMap. Whoever creates the cluster is
            # made admin by EKS itself; the roles below are the team's other admins (CI, SSO).
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                f"admin-{index}": eks.AccessEntryArgs(
                    principal_arn=arn,
                    access_policies={
                        "cluster-admin": eks.AccessPolicyAssociationArgs(
                            policy_arn=CLUSTER_ADMIN_POLICY_ARN,
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                                type="cluster"
                            ),
                        )
                    },
                )
                for index, arn in enumerate(args.options.admin_role_arns)
            },
            create_oidc_provider=True,
            enabled_cluster_log_types=CONTROL_PLANE_LOG_TYPES,
            encryption_config_key_arn=secrets_key.arn,
            # Only managed node groups, and every add-on as an EKS managed add-on we version.
            skip_default_node_group=True,
            skip_default_security_groups=True,
            bootstrap_self_managed_addons=False,
            use_default_vpc_cni=True,
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(enabled=False),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[control_plane_logs, *args.egress_ready]
            ),
        )
