"""The AWS Load Balancer Controller: its Helm release and values, and its IRSA role with the
IAM policy the controller documents."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform import charts
from app_platform.cluster import SYSTEM_NODE_SELECTOR, SYSTEM_TOLERATIONS, service_account_role

LBC_NAMESPACE = "kube-system"
LBC_RELEASE = "aws-load-balancer-controller"
LBC_SERVICE_ACCOUNT = "aws-load-balancer-controller"
LBC_REPLICAS = 2
# The chart requests nothing; on the small system node every pod's share is counted
# (tests/platform/test_karpenter.py), so the controller says what it needs on a small cluster.
LBC_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}}

# The IAM policy the AWS Load Balancer Controller documents for v3.5.0
# (docs/install/iam_policy.json of kubernetes-sigs/aws-load-balancer-controller @v3.5.0).
# Everything that changes or deletes a load balancer, target group or security group is limited
# to those the controller tagged with its cluster tag.
_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
_REQUEST_TAGGED = {f"aws:RequestTag/{_CLUSTER_TAG}": "false"}
_RESOURCE_TAGGED = {f"aws:ResourceTag/{_CLUSTER_TAG}": "false"}
_RETAG_OWN = {f"aws:RequestTag/{_CLUSTER_TAG}": "true", **_RESOURCE_TAGGED}
_ELB = "arn:aws:elasticloadbalancing:*:*:"
_ELB_TAGGABLE = [
    f"{_ELB}targetgroup/*/*",
    f"{_ELB}loadbalancer/net/*/*",
    f"{_ELB}loadbalancer/app/*/*",
]
_SECURITY_GROUPS = "arn:aws:ec2:*:*:security-group/*"


def _allow(actions: list[str], resource: Any = "*", condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


LOAD_BALANCER_CONTROLLER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        _allow(
            ["iam:CreateServiceLinkedRole"],
            condition={
                "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
            },
        ),
        _allow(
            [
                *(
                    f"ec2:{a}"
                    for a in (
                        "DescribeAccountAttributes",
                        "DescribeAddresses",
                        "DescribeAvailabilityZones",
                        "DescribeInternetGateways",
                        "DescribeVpcs",
                        "DescribeVpcPeeringConnections",
                        "DescribeSubnets",
                        "DescribeSecurityGroups",
                        "DescribeInstances",
                        "DescribeNetworkInterfaces",
                        "DescribeTags",
                        "GetCoipPoolUsage",
                        "DescribeCoipPools",
                        "GetSecurityGroupsForVpc",
                        "DescribeIpamPools",
                        "DescribeRouteTables",
                    )
                ),
                *(
                    f"elasticloadbalancing:{a}"
                    for a in (
                        "DescribeLoadBalancers",
                        "DescribeLoadBalancerAttributes",
                        "DescribeListeners",
                        "DescribeListenerCertificates",
                        "DescribeSSLPolicies",
                        "DescribeRules",
                        "DescribeTargetGroups",
                        "DescribeTargetGroupAttributes",
                        "DescribeTargetHealth",
                        "DescribeTags",
                        "DescribeTrustStores",
                        "DescribeListenerAttributes",
                        "DescribeCapacityReservation",
                    )
                ),
            ]
        ),
        _allow(
            [
                "cognito-idp:DescribeUserPoolClient",
                "acm:ListCertificates",
                "acm:DescribeCertificate",
                "iam:ListServerCertificates",
                "iam:GetServerCertificate",
                *(
                    f"{service}:{a}"
                    for service in ("waf-regional", "wafv2")
                    for a in (
                        "GetWebACL",
                        "GetWebACLForResource",
                        "AssociateWebACL",
                        "DisassociateWebACL",
                    )
                ),
                "shield:GetSubscriptionState",
                "shield:DescribeProtection",
                "shield:CreateProtection",
                "shield:DeleteProtection",
            ]
        ),
        _allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]),
        _allow(["ec2:CreateSecurityGroup"]),
        _allow(
            ["ec2:CreateTags"],
            _SECURITY_GROUPS,
            {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}, "Null": _REQUEST_TAGGED},
        ),
        _allow(["ec2:CreateTags", "ec2:DeleteTags"], _SECURITY_GROUPS, {"Null": _RETAG_OWN}),
        _allow(
            [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
            ],
            condition={"Null": _RESOURCE_TAGGED},
        ),
        _allow(
            ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            condition={"Null": _REQUEST_TAGGED},
        ),
        _allow(
            [
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
            ]
        ),
        _allow(
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            _ELB_TAGGABLE,
            {"Null": _RETAG_OWN},
        ),
        _allow(
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            [
                f"{_ELB}listener/net/*/*/*",
                f"{_ELB}listener/app/*/*/*",
                f"{_ELB}listener-rule/net/*/*/*",
                f"{_ELB}listener-rule/app/*/*/*",
            ],
        ),
        _allow(
            [
                f"elasticloadbalancing:{a}"
                for a in (
                    "ModifyLoadBalancerAttributes",
                    "SetIpAddressType",
                    "SetSecurityGroups",
                    "SetSubnets",
                    "DeleteLoadBalancer",
                    "ModifyTargetGroup",
                    "ModifyTargetGroupAttributes",
                    "DeleteTargetGroup",
                    "ModifyListenerAttributes",
                    "ModifyCapacityReservation",
                    "ModifyIpPools",
                )
            ],
            condition={"Null": _RESOURCE_TAGGED},
        ),
        _allow(
            ["elasticloadbalancing:AddTags"],
            _ELB_TAGGABLE,
            {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"]
                },
                "Null": _REQUEST_TAGGED,
            },
        ),
        _allow(
            ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
            f"{_ELB}targetgroup/*/*",
        ),
        _allow(
            [
                f"elasticloadbalancing:{a}"
                for a in (
                    "SetWebAcl",
                    "ModifyListener",
                    "AddListenerCertificates",
                    "RemoveListenerCertificates",
                    "ModifyRule",
                    "SetRulePriorities",
                )
            ]
        ),
    ],
}


class LoadBalancerController:
    """The Edge's AWS Load Balancer Controller (a part of Edge)."""

    def _load_balancer_controller(self, name: str) -> k8s.helm.v3.Release:
        args = self._args
        role, policy = service_account_role(
            f"{name}-load-balancer-controller",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=LBC_NAMESPACE,
            service_account=LBC_SERVICE_ACCOUNT,
            policy=LOAD_BALANCER_CONTROLLER_POLICY,
            parent=self,
        )
        return charts.release(
            f"{name}-load-balancer-controller",
            charts.AWS_LOAD_BALANCER_CONTROLLER,
            release_name=LBC_RELEASE,
            namespace=LBC_NAMESPACE,
            values=pulumi.Output.all(args.cluster_name, args.vpc_id, role.arn).apply(
                lambda v: self.load_balancer_controller_values(*v)
            ),
            opts=self._opts(depends_on=[policy, *args.nodes_ready]),
        )

    def load_balancer_controller_values(
        self, cluster_name: str, vpc_id: str, role_arn: str
    ) -> dict[str, Any]:
        return {
            "clusterName": cluster_name,
            # The controller reads both from instance metadata unless given (pkg/aws/cloud.go
            # @v3.5.0), and nodes allow one IMDS hop, which its pods cannot reach.
            "region": self._args.region,
            "vpcId": vpc_id,
            "replicaCount": min(LBC_REPLICAS, self._args.system_node_count),
            "resources": LBC_RESOURCES,
            "serviceAccount": {
                "create": True,
                "name": LBC_SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            },
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": SYSTEM_TOLERATIONS,
            "podDisruptionBudget": {"maxUnavailable": 1},
            # Only Services that ask for it (our NLB's annotations) go to the controller; with the
            # mutating webhook every new LoadBalancer Service in the cluster would depend on it.
            "enableServiceMutatorWebhook": False,
        }
