"""Observability: metrics, dashboards and alerts for the platform and its apps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform import charts
from app_platform.observability import alerting
from app_platform.observability.alerting import AlertReceivers
from app_platform.observability.alertmanager import Alertmanager
from app_platform.observability.claims import volume_claims
from app_platform.observability.dashboards import (
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    DASHBOARDS,
    Dashboards,
)
from app_platform.observability.edge_monitoring import EdgeMonitoring
from app_platform.observability.grafana import (
    GRAFANA_ADMIN_SECRET,
    GRAFANA_CLUSTER_ROLE,
    GRAFANA_CLUSTER_ROLE_RULES,
    GRAFANA_HOST,
    Grafana,
)
from app_platform.observability.options import ObservabilityOptions
from app_platform.observability.values import (
    NAMESPACE,
    RELEASE,
    RELEASE_TIMEOUT_SECONDS,
    ReleaseValues,
)
from app_platform.options import (
    component_inputs,
)
from app_platform.volumes import BlockStorage, owned_claims


@dataclass(frozen=True)
class ObservabilityArgs:
    """The options, where alerts go, and what the cluster and the edge give."""

    options: ObservabilityOptions
    provider: k8s.Provider
    domain: str
    # The StorageClass Prometheus's volume is made with, and what its claims wait for.
    block_storage: BlockStorage
    # The Gateway Grafana's route attaches to, and the namespace labels it accepts routes from.
    gateway_name: str
    gateway_namespace: str
    route_namespace_labels: dict[str, str]
    # The Envoy proxies to scrape: their namespace and pod labels.
    proxy_namespace: str
    proxy_labels: dict[str, str]
    # How users reach the Gateway: http, or https when the NLB terminates TLS.
    scheme: str = "http"
    # Where alerts go; nothing set: nowhere (the `null` receiver).
    alert_receivers: AlertReceivers = field(default_factory=AlertReceivers)
    # The cluster's OIDC provider, for Alertmanager's IAM role (needed with an SNS topic).
    oidc_provider_arn: pulumi.Input[str] | None = None
    oidc_issuer: pulumi.Input[str] | None = None
    # Gateway API CRDs and nodes: wait for all of them (storage: `block_storage`).
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class Observability(
    ReleaseValues, Grafana, Alertmanager, Dashboards, EdgeMonitoring, pulumi.ComponentResource
):
    """Owns the monitoring namespace, kube-prometheus-stack (Prometheus Operator, Prometheus on
    a gp3 volume whose claim the stack owns, Alertmanager, Grafana, node-exporter,
    kube-state-metrics), Grafana's admin
    Secret and HTTPRoute, the platform's dashboards (ConfigMaps from `dashboards/*.json`), the
    PodMonitor of the Envoy proxies and the edge alert rules; Alertmanager's receivers (routes in
    the values, their secrets in the `alertmanager-receivers` Secret, an IAM role to publish to
    the SNS topic) and the read-only ClusterRole of Grafana's sidecars. Prometheus picks up
    ServiceMonitors, PodMonitors and PrometheusRules from every namespace, labelled or not.
    Prometheus and Alertmanager have no route: reach them with `kubectl port-forward`. They and
    the operator run on the on-demand system nodes; Grafana and kube-state-metrics on the
    workload nodes, node-exporter on every node.

    Gives `namespace`, `release_name`, `grafana_url`, `grafana_admin_password` (secret),
    `dashboard_label` (label key and value the Grafana sidecar loads), `dashboard()` to provision
    a dashboard from a JSON file, and `crds_ready`: resources to depend on before creating
    monitoring.coreos.com custom resources.
    """

    namespace: str
    release_name: str
    grafana_url: str
    grafana_admin_password: pulumi.Output[str]
    crds_ready: list[pulumi.Resource]

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        check_args(args)
        super().__init__(
            "app-platform:observability:Observability",
            name,
            {**component_inputs(args.options), "domain": args.domain},
            opts,
        )
        self._args = args
        self._name = name
        self.namespace = NAMESPACE
        self.release_name = RELEASE
        self.dashboard_label = {DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE}
        self.grafana_host = f"{GRAFANA_HOST}.{args.domain}"
        self.grafana_url = f"{args.scheme}://{self.grafana_host}"

        namespace = k8s.core.v1.Namespace(
            f"{name}-monitoring",
            metadata={"name": NAMESPACE, "labels": args.route_namespace_labels},
            opts=self._opts(depends_on=list(args.depends_on)),
        )
        admin_secret = self._grafana_admin(name, namespace)
        role_arn, alerting_ready = self._alerting(name, namespace)
        grafana_role = k8s.rbac.v1.ClusterRole(
            f"{name}-grafana-configmaps",
            metadata={"name": GRAFANA_CLUSTER_ROLE},
            rules=GRAFANA_CLUSTER_ROLE_RULES,
            opts=self._opts(depends_on=list(args.depends_on)),
        )
        values = self.values(GRAFANA_ADMIN_SECRET, role_arn)
        # The claims the StatefulSets mount are the stack's: created before the release,
        # deleted after it, their volumes deleted before the CSI driver goes (volumes.py).
        claims = owned_claims(
            name,
            args.block_storage,
            NAMESPACE,
            volume_claims(values),
            parent=self,
            provider=args.provider,
            depends_on=[namespace],
        )
        self.release = charts.release(
            f"{name}-kube-prometheus-stack",
            charts.KUBE_PROMETHEUS_STACK,
            release_name=RELEASE,
            namespace=NAMESPACE,
            values=values,
            timeout_seconds=RELEASE_TIMEOUT_SECONDS,
            opts=self._opts(
                depends_on=[
                    namespace,
                    admin_secret,
                    grafana_role,
                    *alerting_ready,
                    *claims,
                    *args.depends_on,
                ]
            ),
        )
        self.crds_ready: list[pulumi.Resource] = [self.release]

        self._grafana_route(name)
        for dashboard in DASHBOARDS:
            self.dashboard(
                f"{name}-dashboard-{dashboard}",
                resources.files("app_platform").joinpath("dashboards", f"{dashboard}.json"),
            )
        self._edge_monitoring(name)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "release_name": self.release_name,
                "grafana_url": self.grafana_url,
                "grafana_admin_password": self.grafana_admin_password,
            }
        )

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **kwargs)


def check_args(args: ObservabilityArgs) -> None:
    """Refuse receivers that cannot be wired, and a rendered configuration Alertmanager would
    not load, before anything is registered (AlertReceivers checked its own settings)."""
    if args.alert_receivers.sns_topic_arn and not (args.oidc_provider_arn and args.oidc_issuer):
        problems = ["an SNS topic needs oidc_provider_arn and oidc_issuer (IAM role for SNS)"]
    else:
        problems = alerting.config_problems(alerting.alertmanager_config(args.alert_receivers))
    if problems:
        raise ValueError("invalid observability arguments:\n  - " + "\n  - ".join(problems))
