"""Alertmanager: its receivers' Secret, its IAM role for SNS, and its values."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform.cluster import (
    ON_SYSTEM_NODES,
    service_account_role,
)
from app_platform.observability import alerting
from app_platform.observability.values import ALERTMANAGER_RESOURCES, NAMESPACE, RELEASE

# Alertmanager's service account (named here, not left to the chart) for its IRSA role.
ALERTMANAGER_SERVICE_ACCOUNT = f"{RELEASE}-alertmanager"


class Alertmanager:
    """The Observability's Alertmanager (a part of Observability)."""

    def _alerting(
        self, name: str, namespace: pulumi.Resource
    ) -> tuple[pulumi.Output[str] | None, list[pulumi.Resource]]:
        """The receivers' Secret and, with an SNS topic, Alertmanager's IAM role: the role ARN
        and what the release must wait for."""
        receivers = self._args.alert_receivers
        ready: list[pulumi.Resource] = []
        secret_data = receivers.secret_data()
        if secret_data:
            ready.append(
                k8s.core.v1.Secret(
                    f"{name}-alertmanager-receivers",
                    metadata={"name": alerting.RECEIVER_SECRET, "namespace": NAMESPACE},
                    string_data=pulumi.Output.secret(secret_data),
                    opts=self._opts(depends_on=[namespace]),
                )
            )
        if not receivers.sns_topic_arn:
            return None, ready
        role, policy = service_account_role(
            f"{name}-alertmanager",
            oidc_provider_arn=self._args.oidc_provider_arn or "",
            oidc_issuer=self._args.oidc_issuer or "",
            namespace=NAMESPACE,
            service_account=ALERTMANAGER_SERVICE_ACCOUNT,
            policy=alerting.sns_publish_policy(receivers.sns_topic_arn),
            parent=self,
        )
        return role.arn, [*ready, policy]

    def _alertmanager_values(self, role_arn: pulumi.Input[str] | None) -> dict[str, Any]:
        receivers = self._args.alert_receivers
        spec: dict[str, Any] = {**ON_SYSTEM_NODES, "resources": ALERTMANAGER_RESOURCES}
        if receivers.secret_data():
            spec["secrets"] = [alerting.RECEIVER_SECRET]
        account: dict[str, Any] = {"name": ALERTMANAGER_SERVICE_ACCOUNT}
        if role_arn is not None:
            account["annotations"] = {"eks.amazonaws.com/role-arn": role_arn}
        return {
            "enabled": True,
            "alertmanagerSpec": spec,
            "serviceAccount": account,
            "config": alerting.alertmanager_config(receivers),
        }
