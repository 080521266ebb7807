"""PlatformRefs: what the platform gives every app (its Kubernetes provider, the shared Gateway,
the monitoring namespace, the network), built either from the platform components in the same
stack or from a platform stack's outputs (`PlatformRefs.from_stack_reference`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform.image import DEFAULT_PLATFORM

# Where apps attach and who may reach them, unless the platform says otherwise.
DEFAULT_PROXY_NAMESPACE = "envoy-gateway-system"
DEFAULT_MONITORING_NAMESPACE = "monitoring"
# kube-prometheus-stack's Grafana sidecar loads ConfigMaps carrying this label, from any namespace.
DEFAULT_DASHBOARD_LABELS = {"grafana_dashboard": "1"}


@dataclass(frozen=True)
class PlatformRefs:
    """Everything an app needs from the platform, as plain values or outputs."""

    provider: k8s.Provider
    gateway_name: pulumi.Input[str]
    gateway_namespace: pulumi.Input[str]
    domain: pulumi.Input[str]
    proxy_namespace: pulumi.Input[str] = DEFAULT_PROXY_NAMESPACE
    monitoring_namespace: pulumi.Input[str] = DEFAULT_MONITORING_NAMESPACE
    # Resources that install the CRDs apps use (Gateway API, Prometheus Operator).
    crds_ready: Sequence[pulumi.Resource] = ()
    vpc_id: pulumi.Input[str] | None = None
    private_subnet_ids: pulumi.Input[Sequence[str]] | None = None
    node_security_group_id: pulumi.Input[str] | None = None
    url_scheme: pulumi.Input[str] = "http"
    # The nodes' OS and architecture, which images built by the stack target.
    node_platform: str = DEFAULT_PLATFORM
    # Labels the Gateway's listeners require on a namespace before they accept its routes.
    route_namespace_labels: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    # Extra labels for ServiceMonitor/PrometheusRule (e.g. `release`), if Prometheus selects them.
    monitor_labels: Mapping[str, str] = field(default_factory=dict)
    dashboard_labels: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_DASHBOARD_LABELS)
    )

    @staticmethod
    def from_stack_reference(name: str, platform_stack: str) -> PlatformRefs:
        """The refs exported by a platform stack (`<org>/app-platform/<stack>`)."""
        ref = pulumi.StackReference(name, stack_name=platform_stack)
        provider = k8s.Provider(
            name,
            kubeconfig=pulumi.Output.secret(ref.require_output("kubeconfig")).apply(
                lambda value: value if isinstance(value, str) else json.dumps(value)
            ),
        )

        def optional(key: str, default: Any) -> pulumi.Output[Any]:
            return ref.get_output(key).apply(lambda value: value or default)

        return PlatformRefs(
            provider=provider,
            gateway_name=ref.require_output("gatewayName"),
            gateway_namespace=ref.require_output("gatewayNamespace"),
            domain=ref.require_output("domain"),
            proxy_namespace=optional("proxyNamespace", DEFAULT_PROXY_NAMESPACE),
            monitoring_namespace=optional("monitoringNamespace", DEFAULT_MONITORING_NAMESPACE),
            route_namespace_labels=optional("routeNamespaceLabels", {}),
            url_scheme=optional("urlScheme", "http"),
            vpc_id=ref.require_output("vpcId"),
            private_subnet_ids=ref.require_output("privateSubnetIds"),
            node_security_group_id=ref.require_output("nodeSecurityGroupId"),
        )
