"""The kube-prometheus-stack release: its names and the values it is installed with."""

from __future__ import annotations

from typing import Any

import pulumi

from app_platform.cluster import (
    NODE_POOL_LABEL,
    ON_SYSTEM_NODES,
)

NAMESPACE = "monitoring"
RELEASE = "kube-prometheus-stack"
# Prometheus, Grafana and every exporter must be ready; that takes longer than other charts.
RELEASE_TIMEOUT_SECONDS = 900

# Grafana's Service, as the grafana subchart names it under this release, and its port.
GRAFANA_SERVICE = f"{RELEASE}-grafana"
GRAFANA_SERVICE_PORT = 80
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
PROMETHEUS_PORT = 9090
ALERTMANAGER_SERVICE = f"{RELEASE}-alertmanager"
ALERTMANAGER_PORT = 9093

RETENTION_SIZE_SHARE = 0.85
PROMETHEUS_RESOURCES = {"requests": {"cpu": "200m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
# The chart requests nothing for these; on the small system node every pod's share is counted
# (tests/platform/test_karpenter.py), so each says what it needs on a small cluster.
OPERATOR_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}}
ALERTMANAGER_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}}

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


class ReleaseValues:
    """The values of the Observability's kube-prometheus-stack release (a part of Observability)."""

    def values(
        self, admin_secret_name: str, alertmanager_role_arn: pulumi.Input[str] | None = None
    ) -> dict[str, Any]:
        args = self._args
        retention_size = int(args.options.volume_size_gib * RETENTION_SIZE_SHARE)
        return {
            **self._eks_scrape_values(),
            "prometheusOperator": {
                **ON_SYSTEM_NODES,
                "resources": OPERATOR_RESOURCES,
                "admissionWebhooks": {"patch": ON_SYSTEM_NODES},
            },
            "prometheus": {
                "prometheusSpec": {
                    **ON_SYSTEM_NODES,
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
                "metricLabelsAllowlist": [
                    f"nodes=[{NODE_POOL_LABEL},eks.amazonaws.com/capacityType]"
                ],
            },
        }

    @staticmethod
    def _eks_scrape_values() -> dict[str, Any]:
        return {
            **{component: {"enabled": False} for component in EKS_HIDDEN_COMPONENTS},
            "defaultRules": {"rules": dict.fromkeys(EKS_HIDDEN_RULE_GROUPS, False)},
        }
