"""IAM roles for AWS services and for Kubernetes service accounts (IRSA)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws


def service_trust_policy(service: str, *actions: str) -> str:
    """A trust policy letting one AWS service principal assume the role."""
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def service_account_role(
    name: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
    policy: dict,
    parent: pulumi.Resource,
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """An IAM role only `namespace/service_account` of this cluster can assume (IRSA), with
    `policy` inline. Callers depend on the returned policy so the workload never starts without
    its permissions, and on destroy is removed before them."""

    def trust(args: list[str]) -> str:
        provider_arn, issuer = args
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider_arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{issuer}:sub": f"system:serviceaccount:{namespace}:"
                                f"{service_account}",
                                f"{issuer}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            }
        )

    role = aws.iam.Role(
        name,
        assume_role_policy=pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(trust),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    inline = aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=json.dumps(policy, separators=(",", ":")),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return role, inline
