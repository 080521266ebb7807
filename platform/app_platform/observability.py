"""Observability: Prometheus, Alertmanager, Grafana (kube-prometheus-stack), dashboards, alerts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import Field

from app_platform import alerting, charts
from app_platform.alerting import AlertReceivers
from app_platform.cluster import (
    NODE_POOL_LABEL,
    SYSTEM_NODE_SELECTOR,
    SYSTEM_TOLERATIONS,
    service_account_role,
)
from app_platform.edge import Route, http_route
from app_platform.options import (
    SECRET,
    AdminPassword,
    Options,
    component_inputs,
    matching,
    whole_number,
)
from app_platform.volumes import BlockStorage, Claim, owned_claims

# Prometheus durations (e.g. 15d, 12h); one unit, as the Prometheus CRD expects.
RETENTION_PATTERN = re.compile(r"^[1-9][0-9]*(h|d|w|y)$")
RETENTION_ACCEPTED = "a duration in hours, days, weeks or years, such as 15d"
DEFAULT_RETENTION = "15d"
DEFAULT_VOLUME_GIB = 50
MIN_VOLUME_GIB = 10
MAX_VOLUME_GIB = 1000
NAMESPACE = "monitoring"
RELEASE = "kube-prometheus-stack"
# Prometheus, Grafana and every exporter must be ready; that takes longer than other charts.
RELEASE_TIMEOUT_SECONDS = 900
# The Grafana sidecar loads every ConfigMap with this label, in any namespace.
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
DASHBOARDS = ("edge", "cluster")
GRAFANA_ADMIN_USER = "admin"
GRAFANA_ADMIN_SECRET = "grafana-admin"  # noqa: S105 (the Secret's name, not a password)
GRAFANA_PASSWORD_LENGTH = 24
GRAFANA_HOST = "grafana"
# Grafana's Service, as the grafana subchart names it under this release, and its port.
GRAFANA_SERVICE = f"{RELEASE}-grafana"
GRAFANA_SERVICE_PORT = 80
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
PROMETHEUS_PORT = 9090
ALERTMANAGER_SERVICE = f"{RELEASE}-alertmanager"
ALERTMANAGER_PORT = 9093
# The StatefulSets the Prometheus Operator makes for the chart's Prometheus and Alertmanager
# (`<kind>-<custom resource name>`; the chart names the resources `<release>-<kind>`), with
# where their volume template sits in the values. A template's claims are named
# `<template name>-<statefulset>-<ordinal>`, the template name defaulting to
# `<statefulset>-db` (prometheus-operator pkg/prometheus/common.go and
# pkg/alertmanager/statefulset.go @v0.93.0; chart templates/_helpers.tpl @88.5.3).
STATEFUL_WORKLOADS = {
    "prometheus": ("prometheusSpec", "storageSpec", f"prometheus-{RELEASE}-prometheus"),
    "alertmanager": ("alertmanagerSpec", "storage", f"alertmanager-{RELEASE}-alertmanager"),
}
# Prometheus stops at this share of its volume even before the retention time is up, so a full
# disk never stops it.
RETENTION_SIZE_SHARE = 0.85
PROMETHEUS_RESOURCES = {"requests": {"cpu": "200m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
# Edge alerts: a route failing this share of requests for this long pages someone.
EDGE_5XX_RATIO = 0.05
EDGE_ALERT_FOR = "10m"
# EKS runs the control plane out of reach: no controller manager, scheduler or etcd endpoint
# to scrape, and its kube-proxy add-on serves metrics on 127.0.0.1:10249 only. The chart's
# scrapers for them (and their dashboards) are off, and so are the rule groups alerting on them,
# which would otherwise fire for as long as the cluster runs.
EKS_HIDDEN_COMPONENTS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
EKS_HIDDEN_RULE_GROUPS = (
    "kubeControllerManager",
    "kubeSchedulerAlerting",
    "kubeSchedulerRecording",
    "etcd",
    "kubeProxy",
)
# Alertmanager's service account (named here, not left to the chart) for its IRSA role.
ALERTMANAGER_SERVICE_ACCOUNT = f"{RELEASE}-alertmanager"
# Grafana's sidecars list ConfigMaps (dashboards, data sources) in every namespace. The chart's
# own ClusterRole would also grant every Secret of the cluster; it is bound to this one instead.
GRAFANA_CLUSTER_ROLE = f"{RELEASE}-grafana-configmaps"
GRAFANA_CLUSTER_ROLE_RULES = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
]
SIDECAR_RESOURCE = "configmap"
# On the on-demand system nodes: their volumes are zonal, a spot reclaim must not strand them.
ON_SYSTEM_NODES = {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": SYSTEM_TOLERATIONS}


class ObservabilityOptions(Options):
    """How long and how much Prometheus keeps, and Grafana's admin login."""

    retention: matching(RETENTION_PATTERN, RETENTION_ACCEPTED) = Field(
        DEFAULT_RETENTION,
        alias="prometheusRetention",
        description="How long Prometheus keeps samples (h, d, w or y); it also stops at 85% of "
        "its volume.",
    )
    volume_size_gib: whole_number(MIN_VOLUME_GIB, MAX_VOLUME_GIB) = Field(
        DEFAULT_VOLUME_GIB,
        alias="prometheusVolumeSizeGib",
        description="Size of Prometheus's gp3 volume, in GiB.",
    )
    grafana_admin_password: AdminPassword = Field(
        None,
        alias="grafanaAdminPassword",
        description="Grafana admin password (set it with --secret); empty: one is generated and "
        "exported as the secret output grafanaAdminPassword.",
        json_schema_extra=SECRET,
    )


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


class Observability(pulumi.ComponentResource):
    """Owns the monitoring namespace, kube-prometheus-stack (Prometheus Operator, Prometheus on
    a gp3 volume whose claim the stack owns, Alertmanager, Grafana, node-exporter,
    kube-state-metrics), Grafana's admin
    Secret and HTTPRoute, the platform's dashboards (ConfigMaps from `dashboards/*.json`), the
    PodMonitor of the Envoy proxies and the edge alert rules; Alertmanager's receivers (routes in
    the values, their secrets in the `alertmanager-receivers` Secret, an IAM role to publish to
    the SNS topic) and the read-only ClusterRole of Grafana's sidecars. Prometheus picks up
    ServiceMonitors, PodMonitors and PrometheusRules from every namespace, labelled or not.
    Prometheus and Alertmanager have no route: reach them with `kubectl port-forward`. All of it
    but node-exporter runs on the on-demand system nodes.

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
            opts=self._opts(),
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

    def values(
        self, admin_secret_name: str, alertmanager_role_arn: pulumi.Input[str] | None = None
    ) -> dict[str, Any]:
        args = self._args
        on_system_nodes = {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": SYSTEM_TOLERATIONS}
        retention_size = int(args.options.volume_size_gib * RETENTION_SIZE_SHARE)
        return {
            **self._eks_scrape_values(),
            "prometheusOperator": {
                **on_system_nodes,
                "admissionWebhooks": {"patch": on_system_nodes},
            },
            "prometheus": {
                "prometheusSpec": {
                    **on_system_nodes,
                    "retention": args.options.retention,
                    "retentionSize": f"{retention_size}GiB",
                    "resources": PROMETHEUS_RESOURCES,
                    "storageSpec": {
                        "volumeClaimTemplate": {
                            "spec": {
                                "storageClassName": args.block_storage.storage_class_name,
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {
                                    "requests": {"storage": f"{args.options.volume_size_gib}Gi"}
                                },
                            }
                        }
                    },
                    # The claim is the stack's (`volume_claims`): the StatefulSet must neither
                    # own nor delete it.
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain"},
                    # Every ServiceMonitor, PodMonitor, Probe and rule of any namespace, not only
                    # those labelled `release: kube-prometheus-stack`: apps bring their own.
                    "serviceMonitorSelectorNilUsesHelmValues": False,
                    "podMonitorSelectorNilUsesHelmValues": False,
                    "ruleSelectorNilUsesHelmValues": False,
                    "probeSelectorNilUsesHelmValues": False,
                },
            },
            "alertmanager": self._alertmanager_values(alertmanager_role_arn),
            "grafana": self._grafana_values(admin_secret_name, self.grafana_url),
            # Node pool and capacity type as labels of kube_node_labels, for the cluster dashboard.
            "kube-state-metrics": {
                **on_system_nodes,
                "metricLabelsAllowlist": [
                    f"nodes=[{NODE_POOL_LABEL},eks.amazonaws.com/capacityType]"
                ],
            },
        }

    @staticmethod
    def _grafana_values(admin_secret_name: str, url: str) -> dict[str, Any]:
        """Grafana on the system nodes, its login from a Secret, its sidecars reading ConfigMaps
        only (through GRAFANA_CLUSTER_ROLE, not the chart's ClusterRole), and the URL users open
        as its root_url (links, redirects and cookies are built on it; the chart has no value
        for it, so it goes in Grafana's own environment override)."""
        return {
            **ON_SYSTEM_NODES,
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

    @staticmethod
    def _eks_scrape_values() -> dict[str, Any]:
        return {
            **{component: {"enabled": False} for component in EKS_HIDDEN_COMPONENTS},
            "defaultRules": {"rules": dict.fromkeys(EKS_HIDDEN_RULE_GROUPS, False)},
        }

    def _alertmanager_values(self, role_arn: pulumi.Input[str] | None) -> dict[str, Any]:
        receivers = self._args.alert_receivers
        spec: dict[str, Any] = dict(ON_SYSTEM_NODES)
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

    def dashboard(self, resource_name: str, path: Path | Any) -> k8s.core.v1.ConfigMap:
        """Provision a Grafana dashboard from a JSON file: a ConfigMap the sidecar loads."""
        return dashboard_config_map(
            resource_name,
            path,
            namespace=self.namespace,
            label=self.dashboard_label,
            opts=self._opts(depends_on=self.crds_ready),
        )

    def _grafana_route(self, name: str) -> None:
        args = self._args
        http_route(
            f"{name}-grafana",
            Route("grafana", NAMESPACE, self.grafana_host, GRAFANA_SERVICE, GRAFANA_SERVICE_PORT),
            gateway_name=args.gateway_name,
            gateway_namespace=args.gateway_namespace,
            opts=self._opts(depends_on=[self.release, *args.depends_on]),
        )

    def _edge_monitoring(self, name: str) -> None:
        args = self._args
        k8s.apiextensions.CustomResource(
            f"{name}-envoy-proxies",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={"name": "envoy-proxies", "namespace": NAMESPACE},
            spec={
                "namespaceSelector": {"matchNames": [args.proxy_namespace]},
                "selector": {"matchLabels": args.proxy_labels},
                # Envoy Gateway names the proxies' stats port `metrics` (19001).
                "podMetricsEndpoints": [{"port": "metrics", "path": "/stats/prometheus"}],
            },
            opts=self._opts(depends_on=self.crds_ready),
        )
        route_5xx = (
            'sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx{envoy_cluster_name=~"'
            'httproute/.*",envoy_response_code_class="5"}[5m])) / sum by (envoy_cluster_name) '
            '(rate(envoy_cluster_upstream_rq_total{envoy_cluster_name=~"httproute/.*"}[5m]))'
        )
        k8s.apiextensions.CustomResource(
            f"{name}-edge-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": "edge", "namespace": NAMESPACE},
            spec={
                "groups": [
                    {
                        "name": "edge",
                        "rules": [
                            {
                                "alert": "RouteServerErrors",
                                "expr": f"{route_5xx} > {EDGE_5XX_RATIO}",
                                "for": EDGE_ALERT_FOR,
                                "labels": {"severity": "warning"},
                                "annotations": {
                                    "summary": "{{ $labels.envoy_cluster_name }} answers more "
                                    f"than {EDGE_5XX_RATIO:.0%} of requests with 5xx"
                                },
                            },
                            {
                                "alert": "EdgeProxiesDown",
                                "expr": f'absent(up{{namespace="{args.proxy_namespace}"}} == 1)',
                                "for": EDGE_ALERT_FOR,
                                "labels": {"severity": "critical"},
                                "annotations": {
                                    "summary": "No Envoy proxy of the shared Gateway is up"
                                },
                            },
                        ],
                    }
                ]
            },
            opts=self._opts(depends_on=self.crds_ready),
        )


def check_args(args: ObservabilityArgs) -> None:
    """Refuse receivers that cannot be wired, and a rendered configuration Alertmanager would
    not load, before anything is registered (AlertReceivers checked its own settings)."""
    if args.alert_receivers.sns_topic_arn and not (args.oidc_provider_arn and args.oidc_issuer):
        problems = ["an SNS topic needs oidc_provider_arn and oidc_issuer (IAM role for SNS)"]
    else:
        problems = alerting.config_problems(alerting.alertmanager_config(args.alert_receivers))
    if problems:
        raise ValueError("invalid observability arguments:\n  - " + "\n  - ".join(problems))


def volume_claims(values: dict[str, Any]) -> list[Claim]:
    """Every claim the operator's StatefulSets will mount, as the chart `values` configure them.

    Alertmanager has no volume: its state is silences and the notification log, and a zonal
    volume would tie the one alerting pod to one zone. A volume given to it here gets its claims
    like Prometheus's."""
    claims: list[Claim] = []
    for workload, (spec_key, storage_key, statefulset) in STATEFUL_WORKLOADS.items():
        spec = values.get(workload, {}).get(spec_key, {})
        template = (spec.get(storage_key) or {}).get("volumeClaimTemplate")
        if not template:
            continue
        if spec.get("shards", 1) != 1:
            raise ValueError(f"{workload}: claims of sharded StatefulSets are not supported")
        template_name = (template.get("metadata") or {}).get("name") or f"{statefulset}-db"
        claims += [
            Claim(
                key=f"{workload}-volume-{ordinal}",
                name=f"{template_name}-{statefulset}-{ordinal}",
                spec=template["spec"],
            )
            for ordinal in range(spec.get("replicas", 1))
        ]
    return claims


def dashboard_config_map(
    resource_name: str,
    path: Path | Any,
    *,
    namespace: str,
    label: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.ConfigMap:
    """A ConfigMap holding one Grafana dashboard JSON file, labelled for Grafana's sidecar.

    `path` is a file path or an importlib resource; apps call this (or `Observability.dashboard`)
    to ship their own dashboards.
    """
    text = path.read_text()
    file_name = Path(str(path)).name
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata={
            "name": f"dashboard-{Path(file_name).stem}",
            "namespace": namespace,
            "labels": label,
        },
        data={file_name: text},
        opts=opts,
    )
