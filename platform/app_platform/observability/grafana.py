"""Grafana: its admin Secret, its values, its sidecars' ClusterRole and its route."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from app_platform.edge import Route, http_route
from app_platform.observability.dashboards import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE
from app_platform.observability.values import (
    GRAFANA_SERVICE,
    GRAFANA_SERVICE_PORT,
    NAMESPACE,
    RELEASE,
)

GRAFANA_ADMIN_USER = "admin"
GRAFANA_ADMIN_SECRET = "grafana-admin"  # noqa: S105 (the Secret's name, not a password)
GRAFANA_PASSWORD_LENGTH = 24
GRAFANA_HOST = "grafana"

# Grafana's sidecars list ConfigMaps (dashboards, data sources) in every namespace. The chart's
# own ClusterRole would also grant every Secret of the cluster; it is bound to this one instead.
GRAFANA_CLUSTER_ROLE = f"{RELEASE}-grafana-configmaps"
GRAFANA_CLUSTER_ROLE_RULES = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
]
SIDECAR_RESOURCE = "configmap"


class Grafana:
    """The Observability's Grafana (a part of Observability)."""

    def _grafana_admin(self, name: str, namespace: pulumi.Resource) -> k8s.core.v1.Secret:
        """Grafana's admin password, given or generated, in the Secret Grafana reads."""
        password: pulumi.Input[str] | None = self._args.options.grafana_admin_password
        if password is None:
            password = random.RandomPassword(
                f"{name}-grafana-admin",
                length=GRAFANA_PASSWORD_LENGTH,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            ).result
        self.grafana_admin_password = pulumi.Output.secret(password)
        # The password reaches Grafana through a Secret, never through Helm values.
        return k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": NAMESPACE},
            string_data={"admin-user": GRAFANA_ADMIN_USER, "admin-password": password},
            opts=self._opts(depends_on=[namespace]),
        )

    @staticmethod
    def _grafana_values(admin_secret_name: str, url: str) -> dict[str, Any]:
        """Grafana on the workload nodes (it keeps nothing), its login from a Secret, its
        sidecars reading ConfigMaps only (through GRAFANA_CLUSTER_ROLE, not the chart's
        ClusterRole), and the URL users open as its root_url (links, redirects and cookies are
        built on it; the chart has no value for it, so it goes in Grafana's own environment
        override)."""
        return {
            "env": {"GF_SERVER_ROOT_URL": url},
            "rbac": {"useExistingClusterRole": GRAFANA_CLUSTER_ROLE},
            "admin": {
                "existingSecret": admin_secret_name,
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            },
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": DASHBOARD_LABEL_VALUE,
                    "searchNamespace": "ALL",
                    "resource": SIDECAR_RESOURCE,
                },
                # The Prometheus data source is provisioned by the chart.
                "datasources": {
                    "enabled": True,
                    "defaultDatasourceEnabled": True,
                    "resource": SIDECAR_RESOURCE,
                },
            },
        }

    def _grafana_route(self, name: str) -> None:
        args = self._args
        http_route(
            f"{name}-grafana",
            Route("grafana", NAMESPACE, self.grafana_host, GRAFANA_SERVICE, GRAFANA_SERVICE_PORT),
            gateway_name=args.gateway_name,
            gateway_namespace=args.gateway_namespace,
            opts=self._opts(depends_on=[self.release, *args.depends_on]),
        )
